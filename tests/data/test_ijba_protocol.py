"""IJB-A protocol readers and writers, on the real protocol and on written files."""
import os

import numpy as np
import pytest
import scipy.io

from interp_fr.data import ijba_protocol as P
from interp_fr.common.errors import DataFileError

# shared/ijba_protocol/README.md, "Sizes per split": comparisons (pos, neg),
# verify_metadata rows/templates/subjects, train, search_gallery, search_probe
# and the probe templates' closed/open split.
README_TABLE = {
    1: ((11786, 1802, 9984), (17997, 1970, 167), (16910, 2708, 332), (3000, 112, 112),
        (13737, 1803, 167), (1252, 551)),
    2: ((11778, 1778, 10000), (18715, 1952, 167), (16354, 2749, 332), (3261, 113, 113),
        (13983, 1797, 168), (1204, 593)),
    3: ((11700, 1721, 9979), (17462, 1895, 167), (17287, 2793, 333), (2661, 112, 112),
        (13467, 1729, 167), (1203, 526)),
    4: ((11778, 1796, 9982), (18721, 1963, 166), (16548, 2732, 333), (2894, 112, 112),
        (14323, 1805, 167), (1230, 575)),
    5: ((11743, 1753, 9990), (17749, 1920, 166), (17040, 2776, 333), (2920, 112, 112),
        (13566, 1765, 167), (1179, 586)),
    6: ((11647, 1647, 10000), (16604, 1814, 166), (17644, 2869, 333), (2451, 113, 113),
        (12789, 1656, 167), (1062, 594)),
    7: ((11651, 1651, 10000), (16268, 1819, 167), (17584, 2869, 333), (2912, 112, 112),
        (12131, 1652, 167), (1088, 564)),
    8: ((11868, 1873, 9995), (19097, 2040, 166), (16367, 2660, 333), (3106, 112, 112),
        (14601, 1882, 167), (1277, 605)),
    9: ((11771, 1779, 9992), (17245, 1953, 167), (17421, 2744, 333), (2594, 112, 112),
        (13323, 1787, 167), (1207, 580)),
    10: ((11751, 1751, 10000), (18395, 1919, 167), (16763, 2792, 333), (2847, 112, 112),
         (14063, 1752, 167), (1165, 587)),
}

ON_DISK = {"templateID": np.uint16, "subjectID": np.uint16, "mediaID": np.uint16,
           "sightingID": np.int32, "gender": np.uint8, "skinTone": np.uint8}


@pytest.fixture(scope="module")
def protocol_dir(shared_dir):
    path = os.path.join(shared_dir, "ijba_protocol")
    assert os.path.isdir(os.path.join(path, "verify", "split1")), path
    return path


def _sizes(table):
    return (len(table), len(np.unique(table.templateID)), len(np.unique(table.subjectID)))


def _template_subjects(table):
    ids, first = np.unique(table.templateID, return_index=True)
    return dict(zip(ids.tolist(), table.subjectID[first].tolist()))


@pytest.mark.parametrize("split", range(1, 11))
def test_every_real_split_matches_readme(protocol_dir, split):
    comp, vmeta, train, gallery, probe, closed_open = README_TABLE[split]
    v = P.read_verify_split(protocol_dir, split, filenames=False)
    s = P.read_search_split(protocol_dir, split, filenames=False)
    assert v.comparison.dtype == np.int64 and v.comparison.shape == (comp[0], 2)
    subj = _template_subjects(v.metadata)
    same = np.array([subj[a] == subj[b] for a, b in v.comparison])
    assert (len(same), int(same.sum()), int((~same).sum())) == comp
    assert _sizes(v.metadata) == vmeta
    assert _sizes(s.gallery) == gallery
    assert _sizes(s.probe) == probe
    g_subjects = set(s.gallery.subjectID.tolist())
    p_subj = _template_subjects(s.probe)
    closed = sum(1 for t in p_subj.values() if t in g_subjects)
    assert (closed, len(p_subj) - closed) == closed_open
    for kind in ("verify_train", "search_train"):
        t = P.read_metadata(P.protocol_path(protocol_dir, kind, split), filenames=False)
        assert _sizes(t) == train
    for table in (v.metadata, s.gallery, s.probe):
        assert table.templateID.dtype == np.int64
        assert table.sightingID.dtype == np.int64
        assert table.bbox.shape == (len(table), 4)
        assert table.landmark.shape == (len(table), 6)
        assert table.visibility.shape == (len(table), 3)
        assert table.filename is None


def test_full_read_of_one_split(protocol_dir):
    m = P.read_metadata(P.protocol_path(protocol_dir, "search_gallery", 1))
    assert m.path.endswith(os.path.join("search", "split1", "search_gallery_1.mat"))
    assert len(m.filename) == len(m) == 3000
    assert all(isinstance(f, str) for f in m.filename)
    assert m.filename[0].startswith(("img/", "frame/"))
    for name, _ in P.METADATA_VARIABLES:
        if name not in P.ID_VARIABLES and name != "filename":
            assert getattr(m, name).dtype == np.float64, name
    assert np.isnan(m.frame).any()
    # 0/1 flags that load as uint8 on disk come back as doubles.
    assert set(np.unique(m.gender).tolist()) <= {0.0, 1.0}


def test_protocol_paths_follow_the_original_layout(tmp_path):
    expect = {
        "verify_comparisons": "verify/split3/verify_comparisons_3.mat",
        "verify_metadata": "verify/split3/verify_metadata_3.mat",
        "verify_train": "verify/split3/train_3.mat",
        "search_gallery": "search/split3/search_gallery_3.mat",
        "search_probe": "search/split3/search_probe_3.mat",
        "search_train": "search/split3/train_3.mat",
    }
    for kind, rel in expect.items():
        assert P.protocol_path(tmp_path, kind, 3) == os.path.join(str(tmp_path), rel)
    with pytest.raises(ValueError):
        P.protocol_path(tmp_path, "gallery", 1)


@pytest.mark.parametrize("values, dtype", [
    ([0, 1], np.uint8), ([0, 255], np.uint8), ([-1, 5], np.int8), ([0, 256], np.uint16),
    ([0, 5834], np.uint16), ([-300, 5], np.int16), ([0, 65536], np.int32),
    ([2, 81487], np.int32), ([-(2 ** 31) - 1], np.float64), ([0.5, 1], np.float64),
    ([np.nan, 1], np.float64), ([np.inf], np.float64), ([], np.float64)])
def test_matlab_storage_dtype(values, dtype):
    assert P.matlab_storage_dtype(np.array(values, np.float64)) == np.dtype(dtype)


def test_real_file_round_trip_keeps_layout(protocol_dir, tmp_path):
    src = P.protocol_path(protocol_dir, "verify_metadata", 5)
    table = P.read_metadata(src)
    out = tmp_path / "verify_metadata_5.mat"
    P.write_metadata(out, table)
    assert scipy.io.whosmat(str(out)) == scipy.io.whosmat(src)
    real, ours = scipy.io.loadmat(src), scipy.io.loadmat(str(out))
    for name, _ in P.METADATA_VARIABLES:
        a, b = real[name], ours[name]
        assert a.shape == b.shape and a.dtype == b.dtype, name
        if name == "filename":
            assert [x[0] for x in a[:, 0]] == [x[0] for x in b[:, 0]]
            assert b[0, 0].shape == (1,) and b[0, 0].dtype.kind == "U"
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)
    for name, dtype in ON_DISK.items():
        assert ours[name].dtype == dtype
    back = P.read_metadata(out)
    assert back.filename == table.filename
    for name, _ in P.METADATA_VARIABLES:
        if name != "filename":
            np.testing.assert_array_equal(getattr(back, name), getattr(table, name))

    comp = P.read_comparisons(P.protocol_path(protocol_dir, "verify_comparisons", 5))
    cout = tmp_path / "verify_comparisons_5.mat"
    P.write_comparisons(cout, comp)
    assert scipy.io.whosmat(str(cout)) == [("comparison", comp.shape, "double")]
    assert scipy.io.loadmat(str(cout))["comparison"].dtype == np.uint16
    np.testing.assert_array_equal(P.read_comparisons(cout, back), comp)


def _small_table(path=None):
    return P.make_table(
        templateID=[7, 7, 3, 9], subjectID=[101, 101, 102, 101],
        sightingID=[12, 40000, 5, 70000], mediaID=[1, 2, 3, 4],
        visibility=[[1, 1, 1], [0, 1, 1], [1, np.nan, 1], [1, 1, 0]],
        gender=[0, 0, 1, 0], age=[30, np.nan, 40, 30],
        filename=["img/1.jpg", "frame/2_00010.png", "img/3.JPG", ""], path=path)


def test_written_split_round_trips(tmp_path):
    root = tmp_path / "IJB-A"
    table = _small_table()
    P.write_split(root, 2, verify_metadata=table, comparison=[[7, 3], [9, 3]],
                  search_gallery=table, search_probe=table, train=table)
    for kind in ("verify_comparisons", "verify_metadata", "verify_train",
                 "search_gallery", "search_probe", "search_train"):
        assert os.path.isfile(P.protocol_path(root, kind, 2)), kind
    v = P.read_verify_split(root, 2)
    np.testing.assert_array_equal(v.comparison, [[7, 3], [9, 3]])
    raw = scipy.io.loadmat(P.protocol_path(root, "search_probe", 2))
    assert raw["sightingID"].dtype == np.int32     # 70000 needs int32 like the real files
    assert raw["templateID"].dtype == np.uint8
    assert raw["templateID"].shape == (4, 1) and raw["visibility"].shape == (4, 3)
    assert raw["visibility"].dtype == np.float64   # NaN keeps it double
    classes = {name: c for name, _, c in scipy.io.whosmat(
        P.protocol_path(root, "search_probe", 2))}
    assert classes.pop("filename") == "cell"
    assert set(classes.values()) == {"double"} and len(classes) == 14
    back = v.metadata
    assert back.filename == ["img/1.jpg", "frame/2_00010.png", "img/3.JPG", ""]
    np.testing.assert_array_equal(back.sightingID, [12, 40000, 5, 70000])
    np.testing.assert_array_equal(back.visibility, table.visibility)
    np.testing.assert_array_equal(back.age, table.age)
    assert np.isnan(back.frame).all() and np.isnan(back.bbox).all()


def test_dataset_mat_round_trip(tmp_path):
    s2i = np.zeros(70000, np.int64)
    s2i[[11, 39999, 4, 69999]] = [1, 2, 3, 4]
    path = tmp_path / "dataset.mat"
    P.write_dataset_mat(path, s2i, badImage=np.zeros(4), poorIndex=[0, 1, 0, 0])
    ds = P.read_dataset_mat(path)
    np.testing.assert_array_equal(ds.sightingID2idx, s2i)
    np.testing.assert_array_equal(ds.poorIndex, [0, 1, 0, 0])
    assert ds.badImage.shape == (4,)
    np.testing.assert_array_equal(ds.image_rows([12, 70000, 5]), [0, 3, 2])
    with pytest.raises(DataFileError, match="not in the image set"):
        ds.image_rows([12, 13], source="probe.mat")
    with pytest.raises(DataFileError, match="outside 1..70000"):
        ds.image_rows([70001])
    with pytest.raises(DataFileError, match="only 3 rows"):
        ds.image_rows([70000], n_images=3)
    P.write_dataset_mat(tmp_path / "bare.mat", s2i)
    bare = P.read_dataset_mat(tmp_path / "bare.mat")
    assert bare.badImage is None and bare.poorIndex is None
    # A row vector, as MATLAB might have stored it, reads the same.
    scipy.io.savemat(tmp_path / "row.mat", {"sightingID2idx": s2i[None, :].astype(float)})
    np.testing.assert_array_equal(P.read_dataset_mat(tmp_path / "row.mat").sightingID2idx,
                                  s2i)


def _write_variables(path, table, drop=None, replace=None):
    variables = {}
    for name, width in P.METADATA_VARIABLES:
        v = getattr(table, name)
        if name == "filename":
            v = P._filename_cell(v)
        else:
            v = np.asarray(v, np.float64).reshape(len(table), width)
        variables[name] = v
    variables.update(replace or {})
    variables.pop(drop, None)
    scipy.io.savemat(path, variables)


def test_bad_inputs_name_the_file_and_the_problem(tmp_path):
    missing = tmp_path / "verify" / "split1" / "verify_metadata_1.mat"
    with pytest.raises(DataFileError, match="verify_metadata_1.mat: file not found"):
        P.read_metadata(missing)
    table = _small_table()
    path = tmp_path / "no_vis.mat"
    _write_variables(path, table, drop="visibility")
    with pytest.raises(DataFileError, match=r"no_vis.mat: missing variable 'visibility'"):
        P.read_metadata(path)
    path = tmp_path / "bad_bbox.mat"
    _write_variables(path, table, replace={"bbox": np.zeros((4, 3))})
    with pytest.raises(DataFileError, match=r"bad_bbox.mat: variable 'bbox' has shape "
                       r"\(4, 3\); expected \(4, 4\)"):
        P.read_metadata(path)
    path = tmp_path / "short.mat"
    _write_variables(path, table, replace={"subjectID": np.ones((3, 1))})
    with pytest.raises(DataFileError, match="'subjectID' has shape"):
        P.read_metadata(path)
    path = tmp_path / "frac.mat"
    _write_variables(path, table, replace={"templateID": np.array([[1.5], [1], [2], [3]])})
    with pytest.raises(DataFileError, match="non-integer"):
        P.read_metadata(path)
    path = tmp_path / "not_a_mat.mat"
    path.write_text("hello")
    with pytest.raises(DataFileError, match="not a readable MATLAB"):
        P.read_metadata(path)

    meta_path = tmp_path / "meta.mat"
    P.write_metadata(meta_path, table)
    meta = P.read_metadata(meta_path)
    comp_path = tmp_path / "verify_comparisons_1.mat"
    P.write_comparisons(comp_path, [[7, 3], [7, 8], [9, 11]])
    with pytest.raises(DataFileError, match=r"verify_comparisons_1.mat: 2 template id\(s\) "
                       r".*meta.mat: \[8, 11\]"):
        P.read_comparisons(comp_path, meta)
    scipy.io.savemat(comp_path, {"comparison": np.ones((3, 3))})
    with pytest.raises(DataFileError, match="expected K x 2"):
        P.read_comparisons(comp_path)
    scipy.io.savemat(comp_path, {"pairs": np.ones((3, 2))})
    with pytest.raises(DataFileError, match="missing variable 'comparison'"):
        P.read_comparisons(comp_path)
    with pytest.raises(DataFileError, match="template id"):
        P.write_split(tmp_path / "IJB-A", 1, verify_metadata=table, comparison=[[7, 4]])
    with pytest.raises(DataFileError, match="sightingID2idx"):
        scipy.io.savemat(tmp_path / "ds.mat", {"other": np.ones(3)})
        P.read_dataset_mat(tmp_path / "ds.mat")
    with pytest.raises(DataFileError, match="expected"):
        P.make_table([1, 2], [1, 1], [1, 2], bbox=np.zeros((2, 3)))
    no_names = P.read_metadata(meta_path, filenames=False)
    with pytest.raises(DataFileError, match="no filenames"):
        P.write_metadata(tmp_path / "x.mat", no_names)


def test_rows_selects_a_subtable():
    t = _small_table()
    sub = t.rows(t.templateID == 7)
    assert len(sub) == 2 and sub.filename == ["img/1.jpg", "frame/2_00010.png"]
    np.testing.assert_array_equal(sub.visibility, t.visibility[:2])
