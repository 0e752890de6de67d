"""The ``clinops`` command."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import sys
import uuid
from datetime import datetime
from pathlib import Path

from infra.kafka.launcher import BrokerError, LocalBroker
from schemas.errors import ClinopsError
from streams.kafka_auth import security_config
from streams.settings import Settings, get_settings
from streams.topics import BEDSIDE_VITALS, CATALOGUE, CLINICAL_OUTCOMES, create_topics, ensure_topics

log = logging.getLogger("clinops")


def local_broker(settings: Settings) -> LocalBroker:
    return LocalBroker(settings.kafka_dir, port=settings.broker_port, controller_port=settings.broker_port + 1)


def require_broker(settings: Settings) -> None:
    """Fail with a clear message when the local broker is expected but not running."""
    if settings.uses_local_broker and not local_broker(settings).is_answering(security_config(settings)):
        raise ClinopsError(
            f"no Kafka broker responds on {settings.bootstrap_servers}; "
            "start one with `clinops broker start` or set KAFKA_BOOTSTRAP_SERVERS "
            "(a secured broker also needs CLINOPS_KAFKA_SECURITY_PROTOCOL, CLINOPS_KAFKA_USERNAME and CLINOPS_KAFKA_PASSWORD)"
        )


def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.uses_local_broker:
        print(f"KAFKA_BOOTSTRAP_SERVERS is set ({settings.bootstrap_servers}); clinops manages no local broker.")
        return 0
    broker = local_broker(settings)
    if args.action != "start":
        # Other actions reach the broker in the mode in which it was last started.
        broker = dataclasses.replace(broker, secured=broker.started_secured())
    if args.action == "install":
        broker.install()
        print(f"Kafka jars in {broker.jars_dir}")
    elif args.action == "start":
        start_broker(dataclasses.replace(broker, secured=args.secured), settings)
    elif args.action == "acls":
        list_broker_acls(broker)
    elif args.action == "stop":
        print("Kafka broker stopped." if broker.stop() else "No Kafka broker was running.")
    else:
        pid = broker.pid()
        answering = broker.is_answering()
        print(f"Kafka broker: {'running' if pid else 'stopped'}"
              f"{f' (pid {pid})' if pid else ''}, {'answering' if answering else 'not answering'} on {broker.bootstrap_servers}")
        return 0 if answering else 1
    return 0


def start_broker(broker: LocalBroker, settings: Settings) -> None:
    """Start the broker. A secured one also gets the catalogue's topics and the role ACLs."""
    if broker.pid() is not None and broker.started_secured() != broker.secured:
        running = "secured" if broker.started_secured() else "plaintext"
        raise ClinopsError(
            f"the local broker already runs in {running} mode; stop it with `clinops broker stop`, "
            f"then start it {'with' if broker.secured else 'without'} --secured"
        )
    broker.start()
    print(f"Kafka broker running on {broker.bootstrap_servers} (pid {broker.pid()}, log {broker.log_file})")
    if not broker.secured:
        return

    from infra.kafka.acls import ROLES, apply_acls

    admin = broker.client_config()
    create_topics(broker.bootstrap_servers, client_config=admin, identified_retention_ms=settings.identified_retention_ms)
    apply_acls(broker.bootstrap_servers, admin)
    print(f"Secured with SASL/PLAIN and ACLs. Passwords of every user are in {broker.password_file} (owner only).")
    print("Users: admin (super user)")
    for role in ROLES:
        print(f"  {role.user:<14} {role.description}")
    print("Clients set CLINOPS_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT, CLINOPS_KAFKA_USERNAME and CLINOPS_KAFKA_PASSWORD.")


def list_broker_acls(broker: LocalBroker) -> None:
    from infra.kafka.acls import list_acls

    if not broker.secured:
        raise ClinopsError("the local broker was last started in plaintext mode, which has no ACLs; "
                           "start it with `clinops broker start --secured`")
    bindings = list_acls(broker.bootstrap_servers, broker.client_config())
    rows = [[b.principal, b.permission_type.name, b.operation.name, b.restype.name, b.resource_pattern_type.name, b.name]
            for b in bindings]
    print(render_table(["principal", "permission", "operation", "resource", "pattern", "name"], rows))


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    require_broker(settings)
    created = ensure_topics(settings, align_retention=True)
    for spec in CATALOGUE:
        state = "created" if spec.name in created else "exists"
        retention_ms = settings.identified_retention_ms if spec.identified else spec.retention_ms
        print(f"{spec.name:<24} {state:<8} partitions={spec.partitions} retention={retention_ms / 3_600_000:g}h key={spec.key}"
              + ("  (identified)" if spec.identified else ""))
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from processors.app import run_worker
    from processors.model_service import check_kinds

    check_kinds((settings.model, *settings.challenger_kinds))
    require_broker(settings)
    run_worker(settings, loglevel=args.loglevel, stages=tuple(args.stages.split(",")))
    return 0


def parse_speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a speed such as 3600, or 'max'") from None
    if speed <= 0:
        raise argparse.ArgumentTypeError("speed must be positive, or 'max'")
    return speed


def parse_start(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time; write it in UTC, such as 2026-01-01T00:00Z") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; write it in UTC, such as 2026-01-01T00:00Z")
    return value


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from clinops.progress import Progress
    from streams.producer import EventProducer
    from streams.sources.physionet import list_stays
    from clinops.devices import register_devices
    from streams.sources.replay import default_start, load_stays, replay, replayed_monitors

    require_broker(settings)
    ensure_topics(settings)
    stays = load_stays(list_stays(Path(args.path), args.limit))
    if args.register_devices:
        announce_registration(register_devices(settings, replayed_monitors(stays), "replay"))
    total = sum(len(stay.rows) + len(stay.malformed) for stay in stays)
    progress = Progress(total, "replay")
    stats = replay(
        stays,
        EventProducer(settings.bootstrap_servers, **security_config(settings)),
        speed=args.speed,
        start=args.start or default_start(),
        run_id=args.run_id or uuid.uuid4().hex,
        on_event=lambda s: progress.update(s.rows + s.malformed),
    )
    progress.close()
    print(f"Replayed {stats.stays} stays: {stats.rows} vitals rows, {stats.outcomes} outcomes, "
          f"{stats.malformed} malformed rows dead-lettered.")
    return 0


def announce_registration(added: int) -> None:
    if added:
        print(f"Registered {monitors(added)} in the device registry.")


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from clinops.progress import Progress
    from streams.producer import EventProducer
    from streams.sources.pacing import produce_paced
    from streams.sources.replay import default_start
    from clinops.devices import register_devices
    from streams.sources.simulator import simulated_events, simulated_monitors

    require_broker(settings)
    ensure_topics(settings)
    if args.register_devices:
        announce_registration(register_devices(settings, simulated_monitors(args.patients, args.seed), "simulator"))
    steps = int(args.hours * 60 / args.interval_minutes) + 1
    progress = Progress(steps * args.patients, "simulate")
    events = simulated_events(
        args.patients, hours=args.hours, interval_minutes=args.interval_minutes,
        start=args.start or default_start(), seed=args.seed,
    )
    stats = produce_paced(events, EventProducer(settings.bootstrap_servers, **security_config(settings)), speed=args.speed,
                          on_event=lambda s: progress.update(s.rows))
    progress.close()
    print(f"Simulated {args.patients} patients: {stats.rows} observations, {stats.outcomes} outcomes.")
    return 0


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from streams.consoles.alerts import follow_alerts, format_alert

    require_broker(settings)
    ensure_topics(settings)
    follow_alerts(
        settings.bootstrap_servers,
        lambda alert: print(format_alert(alert), flush=True),
        from_beginning=args.from_beginning,
        max_alerts=args.max,
        idle_timeout_s=args.idle_timeout,
        client_config=security_config(settings),
    )
    return 0


def cmd_audit_sql(args: argparse.Namespace, settings: Settings) -> int:
    from clinops.audit_query import run_audit_sql

    result = run_audit_sql(settings, args.sql)
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2, default=str))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        print(render_table(result.columns, result.rows))
    return 0


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from clinops.audit_query import run_verify

    report = run_verify(settings)
    for line in report["lines"] or ["the audit store contains no chain yet"]:
        print(line)
    print("audit verify: " + ("passed" if report["ok"] else "FAILED"))
    return 0 if report["ok"] else 1


def cmd_audit_prove(args: argparse.Namespace, settings: Settings) -> int:
    from clinops.audit_query import run_prove

    print(json.dumps(run_prove(settings, args.event_id), indent=2))
    return 0


def cmd_privacy_erase(args: argparse.Namespace, settings: Settings) -> int:
    from clinops.admin_audit import record_admin_action
    from processors.vault import open_vault

    require_broker(settings)
    ensure_topics(settings)
    with open_vault(settings) as vault:
        erased = vault.erase(args.record_number)
    # The audit event names the now unlinkable pseudonym and never the record number.
    event_id = record_admin_action(settings, args.by, "patient.erased", "patient", erased,
                                   {"reason": args.reason, "policy": "new events get a new pseudonym"})
    print(f"Erased: the pseudonym {erased} can no longer be linked to its record number. Audit event {event_id}.")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from clinops.admin_audit import record_admin_action
    from processors.vault import open_vault

    require_broker(settings)
    ensure_topics(settings)
    with open_vault(settings) as vault:
        old_id, new_id = vault.rotate()
    record_admin_action(settings, args.by, "keys.rotated", "key", new_id, {"old_key_id": old_id, "new_key_id": new_id})
    print(f"Rotated the vault's index key: {old_id} destroyed, {new_id} current. Pseudonyms are unchanged.")
    return 0


def cmd_privacy_scan(args: argparse.Namespace, settings: Settings) -> int:
    from clinops.audit_query import run_audit_sql
    from clinops.privacy_scan import (
        findings_from_store, identifiers_from_messages, identifiers_from_vault, scan_logs, scan_topic_messages,
        scanned_topics, store_queries,
    )
    from streams.topic_reader import read_topic

    require_broker(settings)
    kafka_security = security_config(settings)
    # Identified events carry the identifiers to search for; rejected ones may be malformed.
    identified = [m.value() for topic in (BEDSIDE_VITALS, CLINICAL_OUTCOMES)
                  for m in read_topic(settings.bootstrap_servers, topic.name, client_config=kafka_security)]
    identifiers = identifiers_from_messages(identified)
    identifiers.update(identifiers_from_vault(settings))
    if not identifiers:
        print("No identified events are retained, so there is nothing to search for.")
        return 0

    findings = []
    messages = 0
    for topic in scanned_topics():
        values = [m.value() + b"\n" + (m.key() or b"")
                  for m in read_topic(settings.bootstrap_servers, topic, client_config=kafka_security)]
        messages += len(values)
        findings += scan_topic_messages(topic, values, identifiers)
    for place, sql, needles in store_queries(identifiers):
        findings += findings_from_store(place, run_audit_sql(settings, sql), needles, identifiers)
    log_findings, log_files = scan_logs(settings.data_dir, identifiers, skip=local_broker(settings).log_dir)
    findings += log_findings

    print(f"Searched for {len(identifiers)} identifiers in {len(scanned_topics())} topics ({messages} messages), "
          f"the audit tables and {log_files} log files.")
    for finding in findings:
        print("  FOUND " + finding.line())
    print(f"privacy scan: {len(findings)} findings")
    return 1 if findings else 0


def cmd_reidentify(args: argparse.Namespace, settings: Settings) -> int:
    from clinops.reidentify import reidentify

    require_broker(settings)
    ensure_topics(settings)
    decision = reidentify(settings, args.alert_id, args.by, args.reason)
    if decision.refusal is not None:
        print(f"Refused: {decision.refusal}. The request is recorded in the audit trail (event {decision.audit_event_id}).")
        return 3
    identity = decision.identity
    print(f"Alert {decision.alert_id} (pseudonym {decision.pseudonym}):")
    print(f"  record number  {identity.record_number}")
    print(f"  name           {identity.name or '-'}")
    print(f"  birth date     {identity.birth_date.isoformat() if identity.birth_date else '-'}")
    print(f"Recorded in the audit trail as patient.reidentified by {args.by} (event {decision.audit_event_id}).")
    return 0


def cmd_devices(args: argparse.Namespace, settings: Settings) -> int:
    from clinops.devices import read_serials, register_devices, validate_serials
    from processors.vault import open_vault

    if args.devices_command == "list":
        with open_vault(settings) as vault:
            devices = vault.devices()
        print(render_table(["serial", "pseudonym", "registered_by", "registered_at"],
                           [[d.serial, d.pseudonym, d.registered_by, d.registered_at] for d in devices]))
        return 0
    if args.devices_command == "register":
        serials = args.serials
    elif args.devices_command == "import":
        serials = read_serials(Path(args.file))
    else:
        from streams.sources.physionet import list_stays
        from streams.sources.replay import load_stays, replayed_monitors

        serials = replayed_monitors(load_stays(list_stays(Path(args.path), args.limit)))
    validate_serials(serials)
    require_broker(settings)
    ensure_topics(settings)
    added = register_devices(settings, serials, args.by)
    print(f"Registered {monitors(added)} ({len(serials) - added} registered already).")
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from clinops import model_governance

    if args.models_command == "list":
        rows = model_governance.registry(settings)
        if not rows:
            print("No model version is registered yet: start a worker with `clinops worker`.")
            return 0

        def auroc(row: dict) -> str:
            value = row["progressive_auroc"]
            return "-" if value is None else f"{value:.3f} ({row['progressive_auroc_labels']} labels)"

        print(render_table(
            ["version", "role", "labels", "positives", "progressive AUROC", "trained (event time)", "sha256", "code"],
            [[row["model_version"], row["role"], row["labels"], row["positives"], auroc(row),
              f"{row['trained_from'][:16] or '-'} to {row['trained_to'][:16] or '-'}",
              (row["sha256"] or "-")[:16], row["code_version"]] for row in rows]))
        return 0
    require_broker(settings)
    ensure_topics(settings)
    if args.models_command == "approve":
        outcome = model_governance.approve(settings, args.version, args.by, args.reason)
    else:
        outcome = model_governance.rollback(settings, args.by, args.reason)
    if outcome.refusal is not None:
        print(f"Refused: {outcome.refusal}. The request is recorded in the audit trail (event {outcome.audit_event_id}).")
        return 3
    print(f"Approved the {outcome.action}: {outcome.version} becomes the champion, replacing {outcome.previous_version}.")
    print(f"Approval event {outcome.audit_event_id}, decision {outcome.decision_id}; "
          "running scorers apply it within a second and record it as "
          f"model.{'promoted' if outcome.action == 'promotion' else 'rolled_back'}.")
    return 0


def monitors(count: int) -> str:
    return f"{count} new monitor{'' if count == 1 else 's'}"


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from clinops.evaluate import run_evaluation
    from clinops.report import COMPARED_METRICS, comparison_columns, render_html

    output = Path(args.output) if args.output else None
    result, points = run_evaluation(settings, Path(args.path), args.limit,
                                    worker_log=output / "worker.log" if output else None)
    columns = comparison_columns(result)
    print(f"\nChampion {result['model']['version']}: {result['model']['description']}")
    print(f"{result['stays']} stays, {result['rows']} rows ({result['positive_rows']} labelled 1), "
          f"{result['rows_scored_by_both']} scored by both")
    print(render_table(["metric", *(name for name, _ in columns)],
                       [[metric, *(format_figure(figures.get(metric)) for _, figures in columns)] for metric in COMPARED_METRICS]))
    if result["rows_scored_more_than_once"]:
        print(f"NOTE: {result['rows_scored_more_than_once']} rows were scored more than once (events redelivered "
              "after a consumer group rebalance); the first score of each counts.")
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        (output / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
        (output / "report.html").write_text(render_html(result, points))
        print(f"Wrote {output / 'evaluation.json'}, {output / 'report.html'} and the worker's log")
    return 0


def format_figure(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def render_table(columns: list[str], rows: list[list[object]]) -> str:
    cells = [[str(value) for value in row] for row in rows]
    widths = [max([len(column), *(len(row[i]) for row in cells)]) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(value.ljust(width) for value, width in zip(row, widths)) for row in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from clinops.demo import run_demo

    return run_demo(settings, sample=Path(args.sample), limit=args.limit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clinops", description="Clinical MLOps on a stream of vital signs.")
    defaults = DefaultsHelpFormatter
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True)

    broker = commands.add_parser("broker", formatter_class=defaults, help="manage the local single-node Kafka broker")
    broker.add_argument("action", choices=["start", "stop", "status", "install", "acls"],
                        help="acls lists the ACLs of a secured broker")
    broker.add_argument("--secured", action="store_true",
                        help="with start: require SASL/PLAIN logins, create the topics and apply one ACL set per role "
                             "(see docs/secured-broker.md)")
    broker.set_defaults(handler=cmd_broker)

    topics = commands.add_parser("topics", formatter_class=defaults, help="create the catalogue's topics and list them")
    topics.set_defaults(handler=cmd_topics)

    worker = commands.add_parser("worker", formatter_class=defaults, help="run the processors (pseudonymizer, scorer, audit writer)")
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    worker.add_argument("--stages", default="pseudonymizer,scorer,audit",
                        help="comma-separated stages to run: pseudonymizer, scorer, audit (the audit writer)")
    worker.set_defaults(handler=cmd_worker)

    replay = commands.add_parser("replay", formatter_class=defaults, help="replay PhysioNet 2019 .psv stays as bedside events")
    replay.add_argument("path", help="folder of .psv files, one ICU stay each")
    replay.add_argument("--limit", type=int, help="replay only the first N stays (by file name)")
    replay.add_argument("--speed", type=parse_speed, default=None,
                        help="event seconds per wall second (3600: one ICU hour per second), or 'max' (default)")
    replay.add_argument("--start", type=parse_start, help="UTC time of the first admission (default: this hour)")
    replay.add_argument("--run-id", help="seed for event ids; the same run id replays the same ids")
    replay.add_argument("--no-register-devices", dest="register_devices", action="store_false",
                        help="do not add the replayed stays' monitors to the device registry first")
    replay.set_defaults(handler=cmd_replay)

    simulate = commands.add_parser("simulate", formatter_class=defaults, help="generate live bedside feeds, some patients deteriorating")
    simulate.add_argument("--patients", type=int, default=20, help="number of monitored patients")
    simulate.add_argument("--hours", type=float, default=12.0, help="event time to simulate, in hours")
    simulate.add_argument("--interval-minutes", type=float, default=15.0, help="minutes between observations")
    simulate.add_argument("--speed", type=parse_speed, default=900.0,
                          help="event seconds per wall second (default 900: 15 minutes per second), or 'max'")
    simulate.add_argument("--start", type=parse_start, help="UTC time of the first observation (default: this hour)")
    simulate.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same patients")
    simulate.add_argument("--no-register-devices", dest="register_devices", action="store_false",
                          help="do not add the simulated monitors to the device registry first")
    simulate.set_defaults(handler=cmd_simulate)

    alerts = commands.add_parser("alerts", formatter_class=defaults, help="print deterioration alerts as they arrive")
    alerts.add_argument("--from-beginning", action="store_true", help="start with the oldest retained alert")
    alerts.add_argument("--max", type=int, help="stop after this many alerts")
    alerts.add_argument("--idle-timeout", type=float, help="stop after this many seconds without an alert")
    alerts.set_defaults(handler=cmd_alerts)

    audit = commands.add_parser("audit", help="query the audit store")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    sql = audit_commands.add_parser("sql", formatter_class=defaults, help="run one read-only SQL statement (table audit_events)")
    sql.add_argument("sql", help='for example "SELECT action, count() FROM audit_events GROUP BY action"')
    sql.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output format")
    sql.set_defaults(handler=cmd_audit_sql)
    verify = audit_commands.add_parser("verify", help="recompute every audit chain and check the signed checkpoints")
    verify.set_defaults(handler=cmd_audit_verify)
    prove = audit_commands.add_parser("prove", help="print an inclusion proof of one audit event (JSON)")
    prove.add_argument("event_id", help="the audit event's id (a UUID)")
    prove.set_defaults(handler=cmd_audit_prove)

    privacy = commands.add_parser("privacy", help="privacy checks")
    privacy_commands = privacy.add_subparsers(dest="privacy_command", required=True)
    scan = privacy_commands.add_parser(
        "scan", help="search every topic after the pseudonymizer, the audit tables and the logs for identifiers"
    )
    scan.set_defaults(handler=cmd_privacy_scan)
    erase = privacy_commands.add_parser("erase", help="honour an erasure request: make the patient's pseudonym unlinkable")
    erase.add_argument("record_number", help="the patient's record number")
    erase.add_argument("--by", required=True, help="who carries out the request (recorded in the audit trail)")
    erase.add_argument("--reason", default="GDPR Art. 17 erasure request", help="why (recorded in the audit trail)")
    erase.set_defaults(handler=cmd_privacy_erase)

    reid = commands.add_parser("reidentify", help="show the patient behind one alert to an authorized clinician (audited)")
    reid.add_argument("alert_id", help="the alert's id, as `clinops alerts` prints it")
    reid.add_argument("--by", required=True, help="the clinician's user name, as listed in the access file")
    reid.add_argument("--reason", required=True, help="why the identity is needed (recorded in the audit trail)")
    reid.set_defaults(handler=cmd_reidentify)

    devices = commands.add_parser("devices", help="manage the registry of monitors allowed to send vital signs")
    devices_commands = devices.add_subparsers(dest="devices_command", required=True)
    register = devices_commands.add_parser("register", help="register monitors by serial number")
    register.add_argument("serials", nargs="+", help="monitor serial numbers")
    register.add_argument("--by", required=True, help="who registers (recorded in the audit trail)")
    register.set_defaults(handler=cmd_devices)
    load = devices_commands.add_parser("import", help="register the monitors listed in a file, one serial per line")
    load.add_argument("file", help="text file of serial numbers; # starts a comment line")
    load.add_argument("--by", required=True, help="who registers (recorded in the audit trail)")
    load.set_defaults(handler=cmd_devices)
    from_replay = devices_commands.add_parser(
        "register-replay", formatter_class=defaults,
        help="register the monitors that `clinops replay PATH --limit N` sends from")
    from_replay.add_argument("path", help="folder of .psv files, one ICU stay each")
    from_replay.add_argument("--limit", type=int, help="only the first N stays (by file name)")
    from_replay.add_argument("--by", required=True, help="who registers (recorded in the audit trail)")
    from_replay.set_defaults(handler=cmd_devices)
    listing = devices_commands.add_parser("list", help="list the registered monitors")
    listing.set_defaults(handler=cmd_devices)

    models = commands.add_parser("models", help="list model versions; promote a challenger or roll back (audited)")
    models_commands = models.add_subparsers(dest="models_command", required=True)
    models_list = models_commands.add_parser("list", help="list the registered model versions and their evidence")
    models_list.set_defaults(handler=cmd_models)
    approve = models_commands.add_parser("approve", help="promote a challenger to champion (needs an approver role)")
    approve.add_argument("version", help="the challenger's version, as `clinops models list` prints it")
    approve.add_argument("--by", required=True, help="the approver's user name, as listed in the access file")
    approve.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    approve.set_defaults(handler=cmd_models)
    roll = models_commands.add_parser("rollback", help="restore the champion before the last promotion")
    roll.add_argument("--by", required=True, help="the approver's user name, as listed in the access file")
    roll.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    roll.set_defaults(handler=cmd_models)

    keys = commands.add_parser("keys", help="manage the pseudonym vault's keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_commands.add_parser("rotate", help="replace the vault's index key; pseudonyms stay the same")
    rotate.add_argument("--by", required=True, help="who rotates (recorded in the audit trail)")
    rotate.set_defaults(handler=cmd_keys_rotate)

    evaluate = commands.add_parser(
        "evaluate", formatter_class=defaults,
        help="replay PhysioNet stays through a pipeline of its own and compare the model with NEWS2")
    evaluate.add_argument("path", help="folder of .psv files, one ICU stay each")
    evaluate.add_argument("--limit", type=int, help="evaluate only the first N stays (by file name)")
    evaluate.add_argument("--output", help="folder for evaluation.json and report.html")
    evaluate.set_defaults(handler=cmd_evaluate)

    demo = commands.add_parser("demo", formatter_class=defaults, help="run the whole system on the bundled PhysioNet sample")
    demo.add_argument("--sample", default=str(Path(__file__).resolve().parents[1] / "data" / "physionet2019-sample"),
                      help="folder of .psv stays to replay")
    demo.add_argument("--limit", type=int, help="replay only the first N stays")
    demo.set_defaults(handler=cmd_demo)
    return parser


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show an option's default in its help, except for flags and options without one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # librdkafka reports routine connection events at its info level; show them with -v only.
    logging.getLogger("librdkafka").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return args.handler(args, get_settings())
    except (ClinopsError, BrokerError, FileNotFoundError) as exc:
        print(f"clinops: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (such as `head`) closed the pipe; stop quietly, as Unix tools do.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
