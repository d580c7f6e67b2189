"""What every benchmark script shares: the device it ran on and its JSON output."""
import json
import os
import platform


def cpu_description():
    """(CPU model name, dict of the precision-relevant CPU flags)."""
    name, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and name in ("", "unknown",
                                                               platform.processor()):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return name, {f: f in flags for f in ("avx2", "avx512f", "avx512_bf16",
                                          "amx_bf16", "amx_tile")}


def device_description():
    """The device TensorFlow computes on, as a JSON-safe dict."""
    import tensorflow as tf
    cpu, flags = cpu_description()
    gpus = tf.config.list_physical_devices("GPU")
    out = {"device": "GPU" if gpus else "CPU", "cpu": cpu, "cpu_cores": os.cpu_count(),
           "cpu_flags": flags, "tensorflow": tf.__version__,
           "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        out["gpu"] = details.get("device_name", gpus[0].name)
        out["gpu_compute_capability"] = details.get("compute_capability")
        out["gpu_count"] = len(gpus)
    return out


def add_json_flag(parser):
    parser.add_argument("--json", default=None,
                        help="also write the figures to this JSON file")


def write_json(path, result):
    """Writes ``result`` (plus the device) to ``path`` when a path is given."""
    if not path:
        return
    doc = dict(result, device=device_description())
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, default=float)
