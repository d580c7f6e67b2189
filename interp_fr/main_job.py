"""The main job: the whole pipeline on the synthetic world, into one folder.

Each stage is a function ``stage(ctx) -> dict`` that reads what earlier stages
left in ``ctx`` and returns the figures it wants in the report. The report
(``report.md`` and ``report.json``) is rewritten after every stage, so an
interrupted run still leaves an accurate account of what finished.
"""
import dataclasses
import json
import os
import time

from interp_fr.atomic_io import atomic_save_text
from interp_fr.data import dat_files, mat_files, synthetic_world


@dataclasses.dataclass
class JobContext:
    """State shared by the stages."""
    out_dir: str
    world_config: synthetic_world.WorldConfig
    quick: bool = False
    values: dict = dataclasses.field(default_factory=dict)

    def path(self, *parts):
        return os.path.join(self.out_dir, *parts)


def stage_world(ctx):
    """Builds the synthetic world and reads every file back through our readers."""
    world = ctx.path("world")
    summary = synthetic_world.build_world(world, ctx.world_config)
    data = os.path.join(world, synthetic_world.DATA_DIR)
    aux = os.path.join(world, synthetic_world.AUX_DIR)
    casia = dat_files.load_casia(data)
    test = dat_files.open_ijba_images(data)
    mat_files.read_landmarks(os.path.join(aux, synthetic_world.CASIA_LANDMARKS_FILE),
                             expected_count=len(casia.images))
    mat_files.read_landmarks(os.path.join(aux, synthetic_world.IJBA_LANDMARKS_FILE),
                             expected_count=len(test))
    tri = mat_files.read_triangulation(os.path.join(aux, synthetic_world.TRIANGULATION_FILE))
    mat_files.read_frontal_template(os.path.join(aux, synthetic_world.FRONTAL_TEMPLATE_FILE))
    ctx.values.update(world_dir=world, data_dir=data, aux_dir=aux,
                      ijba_dir=os.path.join(world, synthetic_world.IJBA_DIR))
    return {"training images": len(casia.images),
            "training subjects": casia.num_subjects,
            "test images": len(test), "triangles": len(tri),
            "verify comparisons per split": summary["verify_comparisons_per_split"]}


STAGES = [
    ("synthetic world", stage_world),
]


def _write_report(ctx, results):
    lines = ["# interp-fr main job report", ""]
    for name, res in results:
        lines.append(f"## {name} ({res['seconds']:.1f} s)")
        for key, value in res["figures"].items():
            lines.append(f"- {key}: {value}")
        lines.append("")
    atomic_save_text(ctx.path("report.md"), "\n".join(lines))
    atomic_save_text(ctx.path("report.json"), json.dumps(
        {name: res for name, res in results}, indent=2, default=str))


def run_job(out_dir, world_config=None, quick=False, progress=print):
    """Runs every stage in order; returns [(stage name, {seconds, figures})]."""
    os.makedirs(out_dir, exist_ok=True)
    ctx = JobContext(out_dir, world_config or synthetic_world.WorldConfig(), quick)
    results = []
    start = time.perf_counter()
    for i, (name, stage) in enumerate(STAGES, start=1):
        progress(f"[{i}/{len(STAGES)}] {name} ...")
        t0 = time.perf_counter()
        figures = stage(ctx)
        results.append((name, {"seconds": time.perf_counter() - t0, "figures": figures}))
        _write_report(ctx, results)
        progress(f"[{i}/{len(STAGES)}] {name} done in {time.perf_counter() - t0:.1f} s"
                 f" (total {time.perf_counter() - start:.1f} s)")
    progress(f"report: {ctx.path('report.md')}")
    return results
