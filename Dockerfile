# Image of the clinops command: the worker, the feeds and the admin commands.
# It contains no Kafka broker, so set KAFKA_BOOTSTRAP_SERVERS. With CLICKHOUSE_URL
# unset, the worker keeps the audit store as embedded chDB in CLINOPS_DATA_DIR.
# docker-compose.yml points both at its own services.
#
# Based on Debian slim (glibc), not Alpine (musl), because chdb-core 26.9.0 has
# Linux wheels for glibc (manylinux) on x86_64 and aarch64 and none for musl. On
# those two platforms every pinned dependency installs from a wheel, with no
# compiler, except faust-streaming 0.15.3 on aarch64. It has no wheel there, and
# its source build falls back to pure Python when no C compiler is present.

# Stage 1 builds the clinops wheel, so that the final image holds the installed
# package without the source tree or the build backend.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas/ schemas/
COPY streams/ streams/
COPY processors/ processors/
COPY infra/ infra/
COPY clinops/ clinops/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="clinops" \
      org.opencontainers.image.description="Clinical MLOps on a stream of vital signs" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CLINOPS_DATA_DIR=/var/lib/clinops

# The same as `pip install .`: the project's pinned runtime dependencies, without
# the test extra.
COPY --from=build /wheels/ /tmp/wheels/
RUN pip install /tmp/wheels/clinops-*.whl && rm -rf /tmp/wheels

# The processes run as an unprivileged user with a numeric id, so an orchestrator
# can check that it is not root. Its home is the data folder and the working
# directory, because Faust writes its table folder (clinops-data/) into the working
# directory, and the worker keeps its pseudonym key store in the data folder when
# CLINOPS_PSEUDONYM_KEY is unset. Mount a volume there to keep that key when the
# container is replaced.
RUN groupadd --system --gid 10001 clinops \
    && useradd --system --uid 10001 --gid clinops --home-dir /var/lib/clinops \
        --no-create-home --shell /usr/sbin/nologin clinops \
    && install --directory --owner=clinops --group=clinops --mode=0750 /var/lib/clinops

# The bundled PhysioNet 2019 sample for `clinops replay`, owned by root and so
# read-only to the clinops user. Its README carries the CC BY 4.0 attribution.
COPY data/physionet2019-sample/ /app/data/physionet2019-sample/

USER 10001:10001
WORKDIR /var/lib/clinops

# No EXPOSE: the worker's web endpoint (health and audit SQL, CLINOPS_WORKER_PORT,
# default 6066) binds to 127.0.0.1 and is reachable only inside the container.
CMD ["clinops", "worker"]
