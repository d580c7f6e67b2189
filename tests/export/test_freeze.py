"""Frozen GraphDefs and SavedModels: the original's contract, round trips
against the Keras model, the original consumer code, error messages, CLIs."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from interp_fr.model import InterpFRNet
from interp_fr.export import api, frozen_graph as fg, saved_model as sm
from tests.conftest import REPO_ROOT
from tests.helpers.extract_helpers import CONFIG, TOLERANCE, exports, max_abs, world

v1 = tf.compat.v1


@pytest.fixture(scope="module")
def w():
    return world()


@pytest.fixture(scope="module")
def frozen(w):
    """Dynamic-batch and fixed-batch-1 graphs of the reference model."""
    e = exports()
    return {"dynamic": e.frozen, "fixed": e.frozen_fixed}


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(args, cwd=REPO_ROOT, check=True):
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_contract_names_and_constants(w, frozen):
    gd = fg.read_graph_def(frozen["dynamic"])
    nodes = {n.name: n for n in gd.node}
    assert fg.placeholders(gd) == [("sample_input_images", "float32",
                                    [None, 96, 96, 3])]
    assert nodes["Reshape_134"].op == "Identity"
    assert nodes["Mul_2"].op == "Identity"
    assert not any(n.op in ("VarHandleOp", "ReadVariableOp", "VariableV2")
                   for n in gd.node)
    consts = fg.graph_constants(gd)
    names = [n for n in w.model.tf1_variable_map() if "d_k7_id_lin_new" not in n]
    for name in names:
        np.testing.assert_array_equal(consts[name],
                                      w.model.tf1_variable_map()[name].numpy())
    # The classifier is not needed by the outputs, as in the original graph.
    assert "d_k7_id_lin_new/Matrix" not in consts
    assert fg.candidate_outputs(gd)[:2] == ["Reshape_134", "Mul_2"]


def test_dynamic_graph_matches_keras(w, frozen):
    graph = fg.FrozenGraph(frozen["dynamic"])
    assert graph.fixed_batch is None
    out = graph(w.images)
    assert out["feature"].shape == w.feature.shape
    assert max_abs(out["feature"], w.feature) <= TOLERANCE
    assert max_abs(out["feature_map"], w.feature_map) <= TOLERANCE


def test_original_consumer_code_runs_unchanged(w, frozen):
    """test_pre_train.py's own calls (through tf.compat.v1): import under
    'import/', one image per session.run, maps reshaped [24*24, C] -> flat."""
    for path in (frozen["dynamic"], frozen["fixed"]):
        with open(path, "rb") as f:
            graph_def = v1.GraphDef()
            graph_def.ParseFromString(f.read())
        graph = tf.Graph()
        with graph.as_default():
            v1.import_graph_def(graph_def)
        inp = graph.get_tensor_by_name("import/sample_input_images:0")
        feat = graph.get_tensor_by_name("import/Reshape_134:0")
        k5 = graph.get_tensor_by_name("import/Mul_2:0")
        n = len(w.images)
        feats = np.zeros((n, CONFIG["dfc_dim"]), np.float32)
        maps = np.zeros((n, 24 * 24 * CONFIG["dfc_dim"]), np.float32)
        with v1.Session(graph=graph) as sess:
            for i in range(n):
                img = w.images[i].reshape((1, 96, 96, 3))
                feats[i, :], m = sess.run([feat, k5], {inp: img})
                maps[i, :] = m.reshape([24 * 24, CONFIG["dfc_dim"]]).reshape(-1)
        assert max_abs(feats, w.feature) <= TOLERANCE
        assert max_abs(maps, w.feature_map.reshape(n, -1)) <= TOLERANCE


def test_fixed_batch_one_graph_is_fed_one_by_one(w, frozen):
    gd = fg.read_graph_def(frozen["fixed"])
    assert fg.placeholders(gd)[0][2] == [1, 96, 96, 3]
    graph = fg.FrozenGraph(frozen["fixed"])
    assert graph.fixed_batch == 1
    out = graph(w.images)  # 7 images through a batch-1 placeholder
    assert max_abs(out["feature"], w.feature) <= TOLERANCE
    assert max_abs(out["feature_map"], w.feature_map) <= TOLERANCE
    # The placeholder really is fixed: a v1 session refuses two images.
    g = tf.Graph()
    with g.as_default():
        v1.import_graph_def(gd)
    with v1.Session(graph=g) as sess, pytest.raises(ValueError,
                                                    match="Cannot feed"):
        sess.run("import/Reshape_134:0",
                 {"import/sample_input_images:0": w.images[:2]})


def test_frozen_graph_back_to_keras(w, frozen, tmp_path):
    model, result = fg.model_from_frozen_graph(frozen["dynamic"])
    assert result.config == dict(CONFIG, n_subjects=10575, variant="full")
    assert result.missing == ["d_k7_id_lin_new/Matrix", "d_k7_id_lin_new/bias"]
    ref = w.model.tf1_variable_map()
    for name in result.loaded:
        np.testing.assert_array_equal(model.tf1_variable_map()[name].numpy(),
                                      ref[name].numpy())
    assert max_abs(model(w.images)["feature"], w.feature) == 0.0
    # With the classifier kept, the round trip is complete and trainable.
    pb = str(tmp_path / "with_logits.pb")
    gd = fg.freeze_model(w.model, pb, with_logits=True)
    assert "logits" in {n.name for n in gd.node}
    out_path = str(tmp_path / "back.weights.h5")
    model2, result2, _ = api.frozen_graph_to_keras(pb, output=out_path)
    assert result2.missing == [] and result2.config["n_subjects"] == 5
    assert all(v.trainable for n, v in model2.tf1_variable_map().items()
               if "moving" not in n)
    reloaded = InterpFRNet(**CONFIG)
    reloaded.load_weights(out_path)
    assert max_abs(reloaded(w.images)["logits"], w.logits) == 0.0


def _original_style_frozen_graph(w, path):
    """The original's route, in tf.compat.v1: a sampler graph with TF1
    RefVariables (VariableV2) and a batch-1 placeholder, restored from the
    TF1 checkpoint by a v1 Saver and frozen with v1
    convert_variables_to_constants.  Returns the output op names."""
    from tests.reference.tf1_reference import TF1Reference
    ref = TF1Reference.__new__(TF1Reference)
    ref.df_dim, ref.gfc_dim = CONFIG["df_dim"], CONFIG["gfc_dim"]
    ref.dfc_dim, ref.n_subjects = CONFIG["dfc_dim"], CONFIG["n_subjects"]
    graph = tf.Graph()
    with graph.as_default():
        with v1.variable_scope(v1.get_variable_scope(), use_resource=False):
            images = v1.placeholder(tf.float32, [1, 96, 96, 3],
                                    name="sample_input_images")
            _, feature, k5, _ = ref.discriminator(images, False, [])
            # The original's sampler also builds k7; freezing prunes it.
        assert any(op.type == "VariableV2" for op in graph.get_operations())
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as sess:
            saver.restore(sess, w.tf1_prefix)
            gd = v1.graph_util.convert_variables_to_constants(
                    sess, graph.as_graph_def(), [feature.op.name, k5.op.name])
    with open(path, "wb") as f:
        f.write(gd.SerializeToString())
    return feature.op.name, k5.op.name


def test_original_style_tf1_frozen_graph(w, tmp_path):
    pb = str(tmp_path / "tf1_frozen.pb")
    feature_name, map_name = _original_style_frozen_graph(w, pb)
    graph = fg.FrozenGraph(pb, feature_name=feature_name, map_name=map_name)
    assert graph.fixed_batch == 1
    out = graph(w.images)
    assert max_abs(out["feature"], w.feature) <= TOLERANCE
    assert max_abs(out["feature_map"], w.feature_map) <= TOLERANCE
    # Its constants (RefVariable names, read through '/read') rebuild the model.
    model, result = fg.model_from_frozen_graph(pb, n_subjects=5)
    assert "d_k7_id_lin_new/Matrix" in result.missing
    ref = w.model.tf1_variable_map()
    for name in result.loaded:
        np.testing.assert_array_equal(model.tf1_variable_map()[name].numpy(),
                                      ref[name].numpy())
    # The default names are not in it: the error lists what is.
    with pytest.raises(fg.FrozenGraphError) as err:
        fg.FrozenGraph(pb)
    text = str(err.value)
    assert pb in text and "'Reshape_134'" in text
    assert "sample_input_images (float32, shape [1, 96, 96, 3])" in text
    assert feature_name in text and map_name in text


def test_error_messages(w, frozen, tmp_path):
    pb = frozen["dynamic"]
    with pytest.raises(fg.FrozenGraphError) as err:
        fg.FrozenGraph(pb, feature_name="import/Reshape_999:0")
    text = str(err.value)
    assert text.startswith(pb) and "Reshape_999" in text
    assert "placeholders: sample_input_images" in text
    assert "candidate outputs: Reshape_134, Mul_2," in text
    # Names in the consumer's 'import/...:0' form are accepted.
    fg.FrozenGraph(pb, input_name="import/sample_input_images:0",
                   feature_name="import/Reshape_134:0", map_name="Mul_2:0")

    with pytest.raises(fg.FrozenGraphError) as err:
        fg.FrozenGraph(pb, input_name="images")
    assert "no node named 'images' (input)" in str(err.value)
    with pytest.raises(fg.FrozenGraphError) as err:
        fg.FrozenGraph(pb, input_name="Reshape_134")
    assert "not a placeholder" in str(err.value)

    # A graph without any placeholder.
    graph = tf.Graph()
    with graph.as_default():
        tf.constant(1.0, name="c")
        tf.identity(tf.constant(2.0) * 3.0, name="out")
    no_input = str(tmp_path / "no_input.pb")
    with open(no_input, "wb") as f:
        f.write(graph.as_graph_def().SerializeToString())
    with pytest.raises(fg.FrozenGraphError) as err:
        fg.FrozenGraph(no_input)
    text = str(err.value)
    assert text.startswith(no_input)
    assert "placeholders: none" in text and "candidate outputs: out" in text
    with pytest.raises(fg.FrozenGraphError) as err:
        fg.model_from_frozen_graph(no_input)
    assert "TF1 variable names" in str(err.value)

    # Files that are not GraphDefs.
    for name, data in (("empty.pb", b""), ("text.pb", b"hello, this is text\n"),
                       ("random.pb", np.random.default_rng(0).bytes(4096))):
        path = str(tmp_path / name)
        with open(path, "wb") as f:
            f.write(data)
        with pytest.raises(fg.FrozenGraphError) as err:
            fg.FrozenGraph(path)
        assert str(err.value).startswith(path)
        assert "empty" in str(err.value) or "not a binary GraphDef" in str(err.value)
    with pytest.raises(fg.FrozenGraphError, match="file not found"):
        fg.read_graph_def(str(tmp_path / "missing.pb"))


def test_saved_model_parity_and_round_trip(w, tmp_path):
    folder = exports().saved_model
    forward = sm.SavedModelForward(folder)
    assert forward.fixed_batch is None
    out = forward(w.images)
    assert max_abs(out["feature"], w.feature) <= TOLERANCE
    assert max_abs(out["feature_map"], w.feature_map) <= TOLERANCE
    model = sm.model_from_saved_model(folder, loaded=forward.loaded)
    assert max_abs(model(w.images)["logits"], w.logits) == 0.0
    with pytest.raises(sm.SavedModelError, match="no output 'nope'"):
        sm.SavedModelForward(folder, feature_key="nope")
    with pytest.raises(fg.FrozenGraphError, match="SavedModel's saved_model.pb"):
        fg.read_graph_def(os.path.join(folder, "saved_model.pb"))

    # Plain tf.saved_model.load, in a process that cannot import interp_fr.
    np.save(tmp_path / "images.npy", w.images)
    script = textwrap.dedent("""
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("interp_fr", "tests", "tools"):
                    raise ModuleNotFoundError(f"blocked: {name}")
                return None

        sys.meta_path.insert(0, Block())
        import numpy as np
        import tensorflow as tf
        try:
            import interp_fr
            raise SystemExit("interp_fr importable")
        except ModuleNotFoundError:
            pass
        m = tf.saved_model.load(sys.argv[1])
        sig = m.signatures["serving_default"]
        images = np.load(sys.argv[2])
        out = sig(sample_input_images=tf.constant(images))
        np.save(sys.argv[3], out["feature"].numpy())
        np.save(sys.argv[4], m.serve(images)["feature_map"].numpy())
        print(sorted(sys.modules.keys() & {"interp_fr", "keras"}))
    """)
    script_path = tmp_path / "load.py"
    script_path.write_text(script)
    proc = subprocess.run(
            [sys.executable, "-I", str(script_path), folder,
             str(tmp_path / "images.npy"), str(tmp_path / "f.npy"),
             str(tmp_path / "m.npy")],
            cwd=str(tmp_path), capture_output=True, text=True, timeout=300,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr
    assert "interp_fr" not in proc.stdout
    assert max_abs(np.load(tmp_path / "f.npy"), w.feature) <= TOLERANCE
    assert max_abs(np.load(tmp_path / "m.npy"), w.feature_map) <= TOLERANCE


def test_freeze_and_export_clis(w, tmp_path):
    import shutil
    run_dir = str(tmp_path / "models")
    shutil.copytree(w.tf1_dir, run_dir)
    proc = _run(["-m", "tools.freeze.freeze_my_model", "--model_dir", run_dir,
                 "--fixed_batch", "1"])
    pb = os.path.join(run_dir, "pretrained_model.pb")
    assert "ops in the final graph" in proc.stdout and os.path.isfile(pb)
    graph = fg.FrozenGraph(pb)
    assert graph.fixed_batch == 1
    out = graph(w.images)
    assert max_abs(out["feature"], w.feature) <= TOLERANCE

    back = str(tmp_path / "back.weights.h5")
    proc = _run(["-m", "tools.freeze.frozen_to_keras", "--pb", pb,
                 "--output", back, "--n_subjects", "5"])
    assert "freshly initialised: d_k7_id_lin_new/Matrix" in proc.stdout
    model = InterpFRNet(**CONFIG)
    model.load_weights(back)
    assert max_abs(model(w.images)["feature"], w.feature) == 0.0

    proc = _run(["-m", "tools.freeze.export_saved_model", "--model_dir", back])
    folder = os.path.join(str(tmp_path), "saved_model")
    out = sm.SavedModelForward(folder)(w.images)
    assert max_abs(out["feature"], w.feature) <= TOLERANCE

