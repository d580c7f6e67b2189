"""IJB-C ports of verify.m / search.m / process.m on small CSVs in the official format."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from interp_fr.common.errors import DataFileError
from interp_fr.eval import ijbc as C

from tests.conftest import REPO_ROOT  # noqa: E402

REPO = REPO_ROOT

META_HEADER = (["SUBJECT_ID", "FILENAME", "SIGHTING_ID", "FACIAL_HAIR", "AGE",
                "INDOOR_OUTDOOR", "SKINTONE", "GENDER", "YAW", "ROLL"]
               + [f"OCC{k}" for k in range(1, 19)]
               + ["FACE_X", "FACE_Y", "FACE_WIDTH", "FACE_HEIGHT"])
TEMPLATE_HEADER = ["TEMPLATE_ID", "SUBJECT_ID", "FILENAME", "SIGHTING_ID", "FACE_X",
                   "FACE_Y", "FACE_WIDTH", "FACE_HEIGHT"]

# (subject, filename, occlusion flags {k: value}, feature); feature None = the row
# is not an occluded one, so it has no feature row (process.m's selection).
METADATA = [
    (1, "img/1.jpg", {1: 1}, (1, 0)),            # f0
    (1, "img/2.jpg", {8: 1}, None),              # OCC8 only: process.m never reads it
    (1, "frames/5_1.png", {18: 1}, (2, 0)),      # f1
    (2, "img/3.jpg", {3: 1}, (0, 1)),            # f2
    (2, "img/4.jpg", {}, None),                  # not occluded
    (3, "img/6.jpg", {9: 1}, (1, 2)),            # f3
    (3, "img/7.jpg", {2: 1}, (1, 0)),            # f4
    (1, "img/8.jpg", {5: 1}, (0, 0.2)),          # f5
    (2, "img/9.jpg", {4: 1}, (0.1, 1)),          # f6
    (4, "img/10.jpg", {1: 1}, (-1, 0)),          # f7
    (3, "img/11.jpg", {1: ""}, None),            # empty flag: sum is NaN
    (3, "img/13.jpg", {1: 1}, (1, -0.2)),        # f8
    (2, "img/14.jpg", {6: 1}, (3, 0)),           # f9
]
G1 = [(1, 1, "img/1.jpg"), (1, 1, "img/2.jpg"), (2, 2, "img/3.jpg"), (2, 2, "img/4.jpg")]
G2 = [(3, 3, "img/6.jpg"), (3, 3, "img/7.jpg"), (5, 5, "img/12.jpg")]
PROBE = [(10, 1, "frames/5_1.png"), (10, 1, "img/8.jpg"), (11, 2, "img/9.jpg"),
         (12, 3, "img/11.jpg"), (13, 4, "img/10.jpg"), (14, 3, "img/13.jpg"),
         (15, 2, "img/14.jpg")]
MATCHES = [(1, 10), (2, 10), (3, 10), (1, 11), (2, 11), (3, 11), (3, 12), (5, 10),
           (1, 13)]


def _write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8") as f:
        if header:
            f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")


def _write_protocol(folder, g1=G1, g2=G2, probe=PROBE, matches=MATCHES):
    os.makedirs(folder, exist_ok=True)
    meta_rows = []
    for i, (subj, name, occ, _) in enumerate(METADATA):
        flags = [occ.get(k, 0) for k in range(1, 19)]
        meta_rows.append([subj, name, 100 + i, 0, 30, 1, 3, 1, 10.5, -2.0] + flags
                         + [10, 20, 50, 60])

    def protocol_rows(entries):
        return [[t, s, n, 500 + i, 1, 2, 3, 4] for i, (t, s, n) in enumerate(entries)]

    _write_csv(os.path.join(folder, C.METADATA_CSV), META_HEADER, meta_rows)
    _write_csv(os.path.join(folder, C.GALLERY_G1_CSV), TEMPLATE_HEADER, protocol_rows(g1))
    _write_csv(os.path.join(folder, C.GALLERY_G2_CSV), TEMPLATE_HEADER, protocol_rows(g2))
    _write_csv(os.path.join(folder, C.PROBE_CSV), TEMPLATE_HEADER, protocol_rows(probe))
    _write_csv(os.path.join(folder, C.MATCHES_CSV), None, matches)


def _features():
    return np.array([f for *_, f in METADATA if f is not None], float)


@pytest.fixture()
def protocol(tmp_path):
    folder = str(tmp_path / "protocols")
    _write_protocol(folder)
    return folder


def test_template_index_follows_process_m(protocol):
    index = C.load_template_index(protocol)
    assert index.n_feature_rows == 10 == len(_features())
    assert index.ids["G1"].tolist() == [1, 2] and index.ids["G2"].tolist() == [3, 5]
    assert [f.tolist() for f in index.faces["G1"]] == [[0], [2]]
    assert [f.tolist() for f in index.faces["G2"]] == [[3, 4], []]
    assert index.ids["probe"].tolist() == [10, 11, 12, 13, 14, 15]
    assert [f.tolist() for f in index.faces["probe"]] == [[1, 5], [6], [], [7], [8], [9]]
    assert index.subjects["probe"].tolist() == [1, 2, 3, 4, 3, 2]
    every = C.load_template_index(protocol, metadata_selection="all")
    assert every.n_feature_rows == 13
    assert [f.tolist() for f in every.faces["G1"]] == [[0, 1], [3, 4]]


def test_verify_by_hand(protocol):
    index = C.load_template_index(protocol)
    matches = C.read_matches_csv(os.path.join(protocol, C.MATCHES_CSV))
    res = C.verify_ijbc(_features(), index, matches)
    # (3,12) has an empty probe, (5,10) an empty gallery template: skipped.
    assert (res["n_pairs"], res["n_pos"], res["n_neg"], res["n_skipped"]) == (7, 2, 5, 2)
    r = math.sqrt(1.01)
    want = [1 - 1 / r, 1 - 0.1 / r, 1 - 1.1 / (math.sqrt(2) * r), 1 - 0.1 / r,
            1 - 1 / r, 1 - 1.1 / (math.sqrt(2) * r), 2.0]
    np.testing.assert_allclose(res["_dist"], want, rtol=0, atol=1e-15)
    # Both positives come first: FAR_1 = FAR_2 = 0, FAR_3 = 0.2. The rule takes the
    # first j nearest to FAR 0.01, j = 1, where TAR is only 1/2.
    assert res["tar_at_far_0.01"] == [0.5, 0.5, 0.5]
    assert res["tar_at_far_0.001"] == [0.5, 0.5, 0.5]
    assert res["far_reached_0.01"] == [0.0, 0.0, 0.0]
    key = f"{C.ijba.NOT_IN_ORIGINAL}_interpolated_tar_at_far_0.01"
    assert res[key] == [1.0, 1.0, 1.0]


def test_search_by_hand_and_the_empty_rules(protocol):
    index = C.load_template_index(protocol)
    feats = _features()
    # Closed-set probes 10, 11, 12 (empty), 14, 15; gallery 1, 2, 3, 5 (empty).
    # search.m keeps rows with a non-zero distance to gallery template 1: probe 12
    # (empty) and probe 15 (same direction as template 1, d = 0) go; and columns
    # with a non-zero distance to probe 10: template 5 goes. Probe 14 ranks its
    # template 3 second behind template 1.
    res = C.search_ijbc(feats, index)
    assert res["_ranks"].tolist() == [1, 1, 2]
    assert (res["rank1"], res["rank5"], res["rank10"]) == (pytest.approx(2 / 3), 1.0, 1.0)
    assert (res["n_probes"], res["n_gallery"]) == (3, 3)
    res = C.search_ijbc(feats, index, empty_rule="nonempty")
    # Probe 15 is kept: template 1 at d = 0 and template 3 at 1 - 1/sqrt2 precede
    # its template 2 (d = 1).
    assert res["_ranks"].tolist() == [1, 1, 2, 3]
    assert (res["rank1"], res["rank5"]) == (0.5, 1.0)


def test_prepared_mat_round_trip_gives_the_same_results(protocol, tmp_path):
    index = C.load_template_index(protocol)
    path = tmp_path / "ijbc_temp_ID_face_indx.mat"
    C.write_template_index_mat(path, index)
    back = C.read_template_index_mat(path)
    for g in ("probe", "G1", "G2"):
        np.testing.assert_array_equal(back.ids[g], index.ids[g])
        np.testing.assert_array_equal(back.subjects[g], index.subjects[g])
        assert [f.tolist() for f in back.faces[g]] == [f.tolist() for f in index.faces[g]]
    matches = C.read_matches_csv(os.path.join(protocol, C.MATCHES_CSV))
    a = C.evaluate_ijbc(_features(), index, matches)
    b = C.evaluate_ijbc(_features(), back, matches)
    assert a["verify"]["tar_at_far_0.01"] == b["verify"]["tar_at_far_0.01"]
    assert a["search"]["_ranks"].tolist() == b["search"]["_ranks"].tolist()


def test_bad_inputs(protocol, tmp_path):
    index = C.load_template_index(protocol)
    with pytest.raises(DataFileError, match="in neither G1 nor G2"):
        C.verify_ijbc(_features(), index, [[7, 10]], "m.csv")
    with pytest.raises(DataFileError, match="not a probe template"):
        C.verify_ijbc(_features(), index, [[1, 99]], "m.csv")
    with pytest.raises(DataFileError, match="metadata rows are selected"):
        C.evaluate_ijbc(_features()[:5], index, task="search")
    folder = str(tmp_path / "bad")
    _write_protocol(folder, probe=PROBE + [(10, 2, "img/3.jpg")])
    with pytest.raises(DataFileError, match="template 10 has several SUBJECT_IDs"):
        C.load_template_index(folder)
    _write_csv(os.path.join(folder, C.GALLERY_G1_CSV), ["TEMPLATE_ID", "FILENAME"],
               [[1, "img/1.jpg"]])
    with pytest.raises(DataFileError, match=r"missing column\(s\) \['SUBJECT_ID'\]"):
        C.load_template_index(folder)
    with pytest.raises(DataFileError, match="file not found"):
        C.load_template_index(str(tmp_path / "nowhere"))
    _write_csv(os.path.join(folder, C.MATCHES_CSV), None, [(1, 10), ("x", 3)])
    with pytest.raises(DataFileError, match="line 2"):
        C.read_matches_csv(os.path.join(folder, C.MATCHES_CSV))
    # search.m's rule empties everything when the first gallery template is empty.
    folder = str(tmp_path / "first_empty")
    _write_protocol(folder, g1=[(1, 1, "img/2.jpg"), (2, 2, "img/3.jpg")])
    with pytest.raises(DataFileError, match="empty_rule='nonempty'"):
        C.search_ijbc(_features(), C.load_template_index(folder))
    assert C.search_ijbc(_features(), C.load_template_index(folder),
                         "nonempty")["n_probes"] == 3


@pytest.mark.parametrize("module", ["eval.ijbc", "interp_fr.eval.ijbc"])
def test_cli(protocol, tmp_path, module):
    feature_file = tmp_path / "IJBC_features_iter_0.txt"
    np.savetxt(feature_file, _features())
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", module, "--features", str(feature_file),
         "--protocol_dir", protocol, "--output_dir", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "IJB-C: acc@0.01FAR = 0.5 , acc@0.001FAR = 0.5" in proc.stdout
    res = json.loads((out / "ijbc_results.json").read_text())
    assert res["search"]["rank1"] == pytest.approx(2 / 3)
    assert "_dist" not in res["verify"]
    for png in ("ijbc_roc.png", "ijbc_cmc.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
