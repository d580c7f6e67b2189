"""Times the insightface-layout IJB-C evaluation (eval/ijb_insightface.py) at IJB-C size.

Writes synthetic meta files in insightface's formats into a temporary folder
(469,375 faces -> 23,124 templates: 1,772 + 1,759 gallery templates, one per
subject, and 19,593 probe templates; 8,000,000 1:1 pairs of which every probe's
mate pair is genuine; 512-d float32 features), then runs the whole evaluation
(reading every file, pooling, scoring, ROC, 1:N, writing the outputs) in a child
process and prints its seconds per stage and its peak resident memory
(``resource.getrusage`` of the child, so that generating the files does not count).

    python bench/ijbc_insightface.py [--pairs 8000000] [--faces 469375] [--dim 512]
        [--layout protocol|random] [--flip] [--task both|verify|search]
        [--blas_threads 1] [--json out.json]

``--layout protocol`` pairs each gallery template with a block of probe templates
(the IJB-B / IJB-C 1:1 structure: few first-side templates, many second-side);
``random`` draws both templates of every pair uniformly (the worst case for the
scorer, which then multiplies gathered rows pair by pair).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

N_G1, N_G2, N_PROBES = 1772, 1759, 19593  # IJB-C 1:N template counts (sum 23,124)
_LANDMARKS = " ".join(f"{v:.3f}" for v in (38.3, 51.7, 73.5, 51.5, 56.0, 71.7, 41.5,
                                            92.4, 70.7, 92.2))


def _write_lines(path, fmt, *columns, chunk=1_000_000):
    with open(path, "w", encoding="utf-8") as f:
        for s in range(0, len(columns[0]), chunk):
            f.write("\n".join(map(fmt.format, *(c[s:s + chunk].tolist()
                                                 for c in columns))) + "\n")


def make_dataset(folder, n_faces, n_pairs, dim, layout, flip, seed=0):
    """Writes insightface's IJB-C meta files and features.npy (+ flip.npy)."""
    rng = np.random.default_rng(seed)
    n_gallery = N_G1 + N_G2
    n_templates = n_gallery + N_PROBES
    if n_faces < n_templates:
        raise SystemExit(f"--faces must be >= {n_templates}")
    template_ids = np.sort(rng.choice(np.arange(1, 200_000), n_templates, replace=False))
    subject = np.r_[np.arange(n_gallery), rng.integers(0, n_gallery, N_PROBES)]
    face_t = np.r_[np.arange(n_templates), rng.integers(0, n_templates,
                                                        n_faces - n_templates)]
    rng.shuffle(face_t)
    media = face_t * 8 + rng.integers(0, 4, n_faces)
    names = np.arange(1, n_faces + 1)
    _write_lines(os.path.join(folder, "ijbc_face_tid_mid.txt"), "{}.jpg {} {}",
                 names, template_ids[face_t], media)
    score = np.round(rng.uniform(0.3, 1.0, n_faces), 3)
    _write_lines(os.path.join(folder, "ijbc_name_5pts_score.txt"),
                 "{}.jpg " + _LANDMARKS + " {:.3f}", names, score)

    centers = rng.standard_normal((n_gallery, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    for name in ("features.npy", "flip.npy") if flip else ("features.npy",):
        out = np.lib.format.open_memmap(os.path.join(folder, name), mode="w+",
                                        dtype=np.float32, shape=(n_faces, dim))
        for s in range(0, n_faces, 65536):
            t = face_t[s:s + 65536]
            noise = rng.standard_normal((len(t), dim), dtype=np.float32)
            out[s:s + 65536] = (centers[subject[t]] + 0.25 * noise) * \
                rng.uniform(5, 30, (len(t), 1)).astype(np.float32)
        out.flush()
        del out

    probes = np.arange(n_gallery, n_templates)
    if layout == "random":
        t1 = rng.integers(0, n_templates, n_pairs)
        t2 = rng.integers(0, n_templates, n_pairs)
        n_mates = min(N_PROBES, n_pairs // 100)  # keep some genuine pairs
        t1[:n_mates], t2[:n_mates] = subject[probes[:n_mates]], probes[:n_mates]
    else:
        # Every probe with its mate, then each gallery template with a random block
        # of probes; sorted by gallery template as the protocol files are.
        n_imp = max(n_pairs - N_PROBES, 0)
        g_imp = np.sort(rng.integers(0, n_gallery, n_imp))
        p_imp = rng.integers(n_gallery, n_templates, n_imp)
        t1 = np.r_[subject[probes], g_imp][:n_pairs]
        t2 = np.r_[probes, p_imp][:n_pairs]
        order = np.argsort(t1, kind="stable")
        t1, t2 = t1[order], t2[order]
    label = (subject[t1] == subject[t2]).astype(np.int64)
    _write_lines(os.path.join(folder, "ijbc_template_pair_label.txt"), "{} {} {}",
                 template_ids[t1], template_ids[t2], label)

    order = np.argsort(face_t, kind="stable")
    for name, lo, hi in (("ijbc_1N_gallery_G1.csv", 0, N_G1),
                         ("ijbc_1N_gallery_G2.csv", N_G1, n_gallery),
                         ("ijbc_1N_probe_mixed.csv", n_gallery, n_templates)):
        faces = order[(face_t[order] >= lo) & (face_t[order] < hi)]
        path = os.path.join(folder, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write("TEMPLATE_ID,SUBJECT_ID,FILENAME\n")
        with open(path, "a", encoding="utf-8") as f:
            t = face_t[faces]
            f.write("\n".join(map("{},{},img/{}.jpg".format, template_ids[t].tolist(),
                                  subject[t].tolist(), (faces + 1).tolist())) + "\n")
    return {"faces": n_faces, "templates": n_templates, "pairs": int(len(t1)),
            "genuine": int(label.sum()), "dim": dim}


def _vm_hwm_mib():
    """Peak RSS of this process image from /proc (Linux), a cross-check of
    getrusage, whose maximum can carry over from the process that spawned it."""
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def evaluate_child(folder, task, flip, threads):
    """The measured part (runs in its own process): prints one JSON line."""
    from interp_fr.eval import ijb_insightface as E
    t0 = time.perf_counter()
    cfg = E.IJBConfig(meta_dir=folder, features=os.path.join(folder, "features.npy"),
                      flip_features=os.path.join(folder, "flip.npy") if flip else None,
                      task=task, blas_threads=threads,
                      output_dir=os.path.join(folder, "out"))
    results = E.evaluate(cfg)
    t1 = time.perf_counter()
    E.write_outputs(results, cfg.output_dir)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out = {"seconds": dict(results["seconds"], write_outputs=t2 - t1),
           "evaluate_seconds": t1 - t0, "total_seconds": t2 - t0,
           "peak_rss_mib": peak / 1024, "vm_hwm_mib": _vm_hwm_mib()}
    if "verify" in results:
        out["tar_at_far"] = results["verify"]["tar_at_far"]
        out["auc"] = results["verify"]["auc"]
    if "search" in results:
        out["combined_rank1"] = results["search"]["combined"]["rank1"]
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8_000_000)
    parser.add_argument("--faces", type=int, default=469_375)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--layout", choices=("protocol", "random"), default="protocol")
    parser.add_argument("--flip", action="store_true", help="also a flipped .npy")
    parser.add_argument("--task", choices=("both", "verify", "search"), default="both")
    parser.add_argument("--blas_threads", type=int, default=1,
                        help="OpenBLAS threads (0 = library default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--generate", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None,
                        help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.evaluate:
        evaluate_child(args.evaluate, args.task, args.flip, args.blas_threads)
        return
    if args.generate:
        print(json.dumps(make_dataset(args.generate, args.faces, args.pairs, args.dim,
                                      args.layout, args.flip, args.seed)))
        return

    # Generation and evaluation each run in a child process: the child's
    # getrusage maximum starts from its parent's size, which stays small here.
    me = [sys.executable, os.path.abspath(__file__)]
    with tempfile.TemporaryDirectory(prefix="ijbc_insightface_bench_") as tmp:
        t0 = time.perf_counter()
        gen = me + ["--generate", tmp, "--faces", str(args.faces), "--pairs",
                    str(args.pairs), "--dim", str(args.dim), "--layout", args.layout,
                    "--seed", str(args.seed)] + (["--flip"] if args.flip else [])
        size = json.loads(subprocess.run(gen, capture_output=True, text=True,
                                         check=True).stdout.strip().splitlines()[-1])
        print(f"synthetic IJB-C ({args.layout} pairs): {size['faces']} faces, "
              f"{size['templates']} templates, {size['pairs']} pairs "
              f"({size['genuine']} genuine), dim {size['dim']}; written in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        cmd = me + ["--evaluate", tmp, "--task", args.task, "--blas_threads",
                    str(args.blas_threads)]
        if args.flip:
            cmd.append("--flip")
        child = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if child.returncode:
            sys.stderr.write(child.stderr)
            raise SystemExit(child.returncode)
        res = json.loads(child.stdout.strip().splitlines()[-1])
    stages = ", ".join(f"{k} {v:.2f}" for k, v in res["seconds"].items())
    print(f"evaluation: {res['total_seconds']:.2f} s in all ({stages})")
    print(f"peak RSS of the evaluating process: {res['peak_rss_mib']:.0f} MiB "
          f"(getrusage; /proc VmHWM {res['vm_hwm_mib'] or float('nan'):.0f} MiB)")
    if "tar_at_far" in res:
        print("TAR at FAR (insightface rule): " + ", ".join(
            f"{k}: {100 * v:.2f}" for k, v in res["tar_at_far"].items()))
    if args.json:
        from bench.report import write_json
        write_json(args.json, {"benchmark": "IJB-C evaluation, insightface layout",
                               "precision": "float32", "size": size,
                               "layout": args.layout, **res})


if __name__ == "__main__":
    main()
