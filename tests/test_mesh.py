"""One model and its KV cache sharded over a host's chips, on forced CPU devices: the same tokens and pages as one
device, the arrays really split, one chip's bytes as the planner predicts them, and a mesh the devices cannot give
failed in one line."""

from __future__ import annotations

import pytest

from conftest import compose_m9
from hf_files import write_checkpoint, write_tokenizer
from m9.outcome.status import FailureKind, Status
from m9.plan.edge import plan_point
from m9.run.workers import Workers
from m9.run.files import TrialDir
from m9.run.trial import run_trial

# a CPU host made into 4 devices (m9 starts the engine child with --xla_force_host_platform_device_count=4)
SHAPE = ["engine.max_seq_len=128", "workload.prompt_len=8", "workload.max_new_tokens=24", "workload.n_rounds=1",
         "engine.max_seqs=4", "accelerator.chips_per_host=4"]


WORKERS = Workers()  # one warm worker for the module's trials
pytestmark = pytest.mark.xdist_group("mesh")  # in one test process, that worker's


@pytest.fixture(scope="module", autouse=True)
def _one_worker_for_the_module():
    yield
    WORKERS.close()


def _trial(tmp_path, name, *overrides):
    cfg = compose_m9([*SHAPE, *overrides])
    plan = plan_point(cfg)
    trial = TrialDir(tmp_path / name)
    outcome = run_trial(cfg, plan, trial, WORKERS)
    return plan, outcome, trial.read_result()


@pytest.mark.parametrize("heads,meshes", [
    (2, [["mesh.model=2"], ["mesh.data=2", "mesh.model=2"]]),
    (4, [["mesh.model=4"]]),  # 4 KV heads over 4 chips
], ids=["kv2", "kv4"])
def test_a_sharded_model_decodes_the_tokens_and_pages_of_one_device(tmp_path, heads, meshes):
    kv = f"model.num_kv_heads={heads}"
    one_plan, one, one_result = _trial(tmp_path, "one", kv, "mesh.model=1")
    assert one.status == Status.PASS, one.signature
    for i, mesh in enumerate(meshes):
        plan, outcome, result = _trial(tmp_path, f"m{i}", kv, *mesh)
        assert outcome.status == Status.PASS, outcome.signature
        assert result.rounds[0].tokens_digest == one_result.rounds[0].tokens_digest  # greedy tokens, exactly
        assert result.rounds[0].seq_lens == one_result.rounds[0].seq_lens
        assert outcome.metrics["pages_in_use"] == one.metrics["pages_in_use"] == plan.predicted_pages_in_use
        got, data, model = result.sharding, *compose_m9([*SHAPE, kv, *mesh]).mesh_shape
        assert got.mesh == (data, model) and got.devices == data * model and outcome.runtime["mesh"] == f"{data}x{model}"
        # really split: one chip holds 1/model of the KV cache (kv_head), and less than all of the weights
        assert got.kv_cache_spec == "P(None, None, 'model', None)"
        assert got.kv_cache_bytes_per_chip * model == got.kv_cache_bytes == one_result.sharding.kv_cache_bytes
        assert got.weight_bytes_per_chip < got.weight_bytes == one_result.sharding.weight_bytes
        # what was recorded, read from the arrays, is what the planner predicted
        assert (got.weight_bytes_per_chip, got.kv_cache_bytes_per_chip) == (plan.weight_bytes_per_chip,
                                                                            plan.kv_cache_bytes_per_chip)
        assert outcome.metrics["weight_bytes_per_chip"] == outcome.metrics["predicted_weight_bytes_per_chip"]
        assert not [n for n in outcome.notes if "differs from predicted" in n]


def test_a_mesh_the_child_cannot_build_fails_the_point_in_one_line_naming_both(tmp_path):
    """The planner refuses 4 chips of a 2-device host; overruled, the child sees 2 devices and says so."""
    cfg = compose_m9([*SHAPE[:-1], "accelerator.chips_per_host=2", "mesh.model=4", "model.num_kv_heads=4",
                      "trial.enforce_plan=false"])
    plan = plan_point(cfg)
    assert plan.rejections == ("mesh.data=1 x mesh.model=4 = 4 chips > accelerator.chips_per_host=2 of one cpu host",)
    outcome = run_trial(cfg, plan, TrialDir(tmp_path / "t"), WORKERS)
    assert (outcome.status, outcome.failure_kind) == (Status.FAIL, FailureKind.ENGINE_ERROR)
    assert outcome.signature == "MeshError: mesh.data=1 x mesh.model=4 needs 4 devices; this process sees 2 (cpu: cpu)"


@pytest.mark.slow
def test_a_checkpoint_is_read_onto_the_mesh_and_decodes_the_tokens_of_one_device(tmp_path, tiny_model):
    """Levanter's converter places the saved weights on the mesh with the axis mapping in context."""
    ckpt = write_checkpoint(tmp_path / "tiny-llama", tiny_model, write_tokenizer(tmp_path / "tokenizer"))
    _, random, random_result = _trial(tmp_path, "random", "mesh.model=1")  # the weights it saved, as built
    _, one, one_result = _trial(tmp_path, "one", f"model.checkpoint={ckpt}", "mesh.model=1")
    plan, two, result = _trial(tmp_path, "two", f"model.checkpoint={ckpt}", "mesh.model=2")
    assert random.status == one.status == two.status == Status.PASS, (one.signature, two.signature)
    assert result.rounds[0].tokens_digest == one_result.rounds[0].tokens_digest == random_result.rounds[0].tokens_digest
    got = result.sharding
    assert got.mesh == (1, 2) and got.kv_cache_bytes_per_chip * 2 == got.kv_cache_bytes
    assert got.weight_bytes_per_chip < got.weight_bytes == one_result.sharding.weight_bytes
    assert (got.weight_bytes_per_chip, got.kv_cache_bytes_per_chip) == (plan.weight_bytes_per_chip,
                                                                        plan.kv_cache_bytes_per_chip)
