"""The Spark engine: the same per-patient function on Apache Spark.

Each export file is read by one task with the adapter's reader (so messy lines are counted
the same way), resources are keyed and grouped by patient, each partition codes its
patients with a PatientCoder built once per Python worker from the broadcast model files,
and the results come back to the driver sorted by patient id, one partition at a time.

On a cluster the executors need this package installed (or shipped with `--py-files`);
the models travel in the broadcast, so no shared file system is needed.
"""
from __future__ import annotations

import bisect
import hashlib
import io
import logging
import os
import sys
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from fhir_assist.adapter.report import IngestReport
from fhir_assist.tasks.artifacts import BUNDLED_DIR

from .groups import MEDICATION, PATIENT, export_files, keyed_resources, medications_named
from .output import BatchTotals, OutputWriter
from .patient import PatientCoder, PatientResult

SEEN = "seen"
_CODERS: dict[str, PatientCoder] = {}   # per Python worker: the models' digest → coder


def run_spark(options, writer: OutputWriter) -> tuple[BatchTotals, dict]:
    from pyspark import StorageLevel

    from .job import coder_factory

    sc = _context(options.spark_master)
    try:
        files = [str(f) for f in export_files(options.data)]
        keyed = sc.parallelize(files, max(1, len(files))).mapPartitions(_read_files)
        keyed.persist(StorageLevel.MEMORY_AND_DISK)
        # One pass gives what every patient needs to know: counts, shared Medications, the ids.
        read, medications, ids = IngestReport(), {}, set()
        for report, meds, pids in keyed.filter(lambda x: x[0] == SEEN).map(lambda x: x[2]).collect():
            read.merge(report)
            for key, medication in meds.items():
                medications.setdefault(key, medication)
            ids |= pids
        shared = sc.broadcast(medications)
        packed = _pack_models(options.models)
        models = sc.broadcast((hashlib.sha256(packed).hexdigest(), packed, coder_factory(options)))
        by_patient = keyed.filter(lambda x: x[0] == PATIENT).map(lambda x: (x[1], x[2]))
        # Ranges of patient ids, one per partition, so that partitions in order, each sorted,
        # are the whole output in patient-id order (no second shuffle of the results).
        ids = sorted(ids)
        partitions = max(1, min(sc.defaultParallelism * 4, len(ids)))
        bounds = [ids[len(ids) * k // partitions] for k in range(1, partitions)]
        coded = (by_patient.groupByKey(partitions, partitionFunc=lambda pid: bisect.bisect_right(bounds, pid))
                 .mapPartitions(lambda rows: _code_partition(rows, models, shared)))
        # Code every partition at once, then bring them to the driver in order (pulling them
        # one by one would code one partition at a time).
        coded.persist(StorageLevel.MEMORY_AND_DISK)
        coded.count()
        keyed.unpersist()
        totals = BatchTotals(read)
        writer.write(coded.toLocalIterator(), totals)
        coded.unpersist()
        return totals, {"spark_master": options.spark_master, "partitions": partitions}
    finally:
        sc.stop()


# Spark's own start-up chatter (default profile, native libraries, host name) is not ours to show.
_LOG4J = """rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
"""


def _context(master: str):
    from pyspark import SparkConf, SparkContext

    # The workers run this interpreter, with this package on their path.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    here = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    log4j = Path(tempfile.gettempdir()) / "fhir-assist-spark-log4j2.properties"
    if not log4j.is_file() or log4j.read_text(encoding="utf-8") != _LOG4J:
        log4j.write_text(_LOG4J, encoding="utf-8")
    conf = (SparkConf().setMaster(master).setAppName("fhir-assist code-batch")
            .set("spark.ui.enabled", "false")
            .set("spark.ui.showConsoleProgress", "false")
            .set("spark.python.worker.reuse", "true")
            .set("spark.executorEnv.PYTHONPATH", path)
            # pyspark's workers warn about the pandas version, which this job does not use
            .set("spark.executorEnv.PYTHONWARNINGS", "ignore:PySpark does not yet fully support pandas:FutureWarning")
            .set("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log4j.as_uri()}"))
    sc = SparkContext.getOrCreate(conf)
    sc.setLogLevel("WARN")
    logging.getLogger("py4j").setLevel(logging.WARNING)       # a line per gateway connection
    return sc


def _read_files(paths: Iterable[str]) -> Iterator[tuple]:
    """(PATIENT, patient id, resource) for every patient's resource of the files, then
    (SEEN, None, (report, {medication id: Medication}, {patient ids}))."""
    report, medications, ids = IngestReport(), {}, set()
    for path in paths:
        for kind, key, resource in keyed_resources(path, report):
            if kind == MEDICATION:
                medications.setdefault(key, resource)
            else:
                ids.add(key)
                yield kind, key, resource
    yield SEEN, None, (report, medications, ids)


def _pack_models(models_dir: str | None) -> bytes:
    """The model directory as a tar archive: executors need no shared file system."""
    root = Path(models_dir).expanduser().resolve() if models_dir else BUNDLED_DIR
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(root, arcname="models")
    return buffer.getvalue()


def _coder(models) -> PatientCoder:
    """This worker's coder for the broadcast models, built on first use."""
    key, packed, (_, bundles, recorded) = models.value
    coder = _CODERS.get(key)
    if coder is None:
        from .job import build_coder

        coder = _CODERS[key] = build_coder((str(_unpacked(key, packed)), bundles, recorded))
    return coder


def _unpacked(key: str, packed: bytes) -> Path:
    """The broadcast models unpacked once per machine (one folder per digest, so repeated runs
    and the workers beside this one reuse it)."""
    target = Path(tempfile.gettempdir()) / f"fhir-assist-models-{key[:16]}"
    if not (target / "models").is_dir():
        staging = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=target.parent))
        with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
            tar.extractall(staging, filter="data")
        try:
            staging.rename(target)
        except OSError:              # another worker got there first
            shutil.rmtree(staging, ignore_errors=True)
    return target / "models"


def _code_partition(rows: Iterable[tuple[str, Iterable[dict]]], models, shared) -> Iterator[PatientResult]:
    coder = None
    for patient_id, grouped in sorted(rows, key=lambda row: row[0]):
        coder = coder or _coder(models)
        resources = list(grouped)
        yield coder.code(patient_id, resources + medications_named(resources, shared.value))
