# Image of the clinops command: the worker, the feeds and the admin commands.
# It holds no Kafka broker and no ClickHouse server, so set KAFKA_BOOTSTRAP_SERVERS
# and CLICKHOUSE_URL (docker-compose.yml does both).
#
# Based on Debian slim (glibc), not Alpine (musl): chdb, pyarrow, river and
# confluent-kafka ship manylinux wheels for x86_64 and aarch64 only, so the image
# installs without a compiler on those two platforms.

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
# CLINOPS_PSEUDONYM_KEY is unset.
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
