"""Data-parallel training with ``distributed=True`` (issue 19).

The fast tests run in this process: the launch error, the sharding's
arithmetic, and a world-size-1 gloo process group (a FileStore, no
network). The slow tests start 2 ranks on the CPU (gloo on 127.0.0.1, one
thread each) once for every case (``_ddp_worker.launch``) and compare what
each rank wrote with single-process fits made here.
"""

import os
import pickle

import numpy as np
import pytest
import torch
from _ddp_worker import launch
from _helpers import fit_quietly, public_estimators

import skae
import skae._modules
from skae._batches import TensorData
from skae._distributed import ShardedBatchIterator

dist = pytest.importorskip("torch.distributed")
if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

BATCH, WORLD = 25, 2
COMMON = dict(n_components=3, hidden_layer_sizes=(16,), max_iter=4, n_iter_no_change=10,
              random_state=0, device="cpu")
# Every estimator, deterministic: no shuffling, no alpha, no noise.
EQUIVALENT = {
    "AutoencoderTransformer": {},
    "DenoisingAE": dict(noise_level=0.0),
    "ContractiveAE": dict(contraction_weight=0.5),
    "VariationalAE": {},  # with the draws set to 0 (zero_eps) on both sides
    "StackedAE": dict(pretrain_max_iter=2),
}
EXTRA_EQUIVALENT = {  # name: (class, params)
    "alpha": ("AutoencoderTransformer", dict(alpha=1e-2)),
    "contractive_closed_form": (
        "ContractiveAE", dict(hidden_layer_sizes=(), code_activation="logistic"),
    ),
    # 42 held-out rows, 168 training rows: a multiple of the world size.
    "early_stopping": (
        "AutoencoderTransformer", dict(early_stopping=True, validation_fraction=0.2),
    ),
    # Supervised fine-tuning: the labels are sharded with the rows.
    "stacked_classification": (
        "StackedAE", dict(fine_tune="classification", reconstruction_weight=0.5,
                          pretrain_max_iter=2),
    ),
}


def _low_rank(n_samples=210, n_features=16, seed=0):
    rng = np.random.RandomState(seed)
    basis = rng.randn(3, n_features)
    return (rng.randn(n_samples, 3) @ basis + 0.1 * rng.randn(n_samples, n_features)).astype(
        np.float32
    )


def _labels(X):
    return (X[:, 0] > np.median(X[:, 0])).astype(int)



def _state(est):
    return {k: v.detach().numpy() for k, v in est.module_.state_dict().items()}


# ----------------------------------------------------------------------
# fast, in this process
# ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", public_estimators(), ids=lambda c: c.__name__)
def test_distributed_without_process_group_is_a_clear_error(cls):
    X = _low_rank(20)
    est = cls(distributed=True, **COMMON)
    with pytest.raises(ValueError, match=r"torchrun --standalone --nproc-per-node=2"):
        est.fit(X)
    assert not hasattr(est, "module_")


@pytest.mark.parametrize("n, world, batch", [(210, 2, 25), (200, 2, 50), (211, 2, 25),
                                             (10, 3, 2), (1, 2, 4)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_shards_are_distributed_sampler_rows_and_interleave_into_big_batches(
    n, world, batch, shuffle
):
    X = torch.arange(n, dtype=torch.float32)[:, None]
    ranks = [
        ShardedBatchIterator(TensorData(X), batch, shuffle, r, world, seed=7) for r in range(world)
    ]
    batches = [[[int(v) for v in b[:, 0]] for b, _ in it] for it in ranks]  # one epoch
    shards = [sum(rank_batches, []) for rank_batches in batches]
    # DistributedSampler's rows, drop_last=False: equal lengths, padded by
    # repeating the permutation's first rows.
    sampler = torch.utils.data.DistributedSampler(
        range(n), num_replicas=world, rank=0, shuffle=shuffle, seed=7
    )
    for r in range(world):
        sampler.rank = r
        assert shards[r] == list(sampler), r
    assert len({len(s) for s in shards}) == 1
    assert set(sum(shards, [])) == set(range(n))
    # Batch i of every rank together: batch i of one process with batch
    # world * batch over the same permutation (no padding needed).
    if n % world == 0:
        order = sum(zip(*shards), ())
        for i, parts in enumerate(zip(*batches)):
            union = sorted(sum(parts, []))
            assert union == sorted(order[i * world * batch : (i + 1) * world * batch])
    # A new epoch, a new permutation (with shuffling).
    again = [int(v) for b, _ in ranks[0] for v in b[:, 0]]
    assert (again != shards[0]) == (shuffle and n > 2)


@pytest.mark.parametrize("cls", public_estimators(), ids=lambda c: c.__name__)
def test_world_of_one_equals_a_plain_fit(cls, world_of_one, monkeypatch):
    monkeypatch.setattr(skae._modules, "standard_normal", torch.zeros_like)  # VAE draws
    X = _low_rank(60)
    params = dict(COMMON, shuffle=False, max_iter=2, **EQUIVALENT.get(cls.__name__, {}))
    ddp = fit_quietly(cls(distributed=True, **params), X)
    plain = fit_quietly(cls(**params), X)
    for k, v in _state(plain).items():
        np.testing.assert_array_equal(_state(ddp)[k], v, err_msg=k)
    assert ddp.loss_curve_ == pytest.approx(plain.loss_curve_, rel=1e-6)
    # The fitted estimator is a plain one: it pickles and transforms.
    clone = pickle.loads(pickle.dumps(ddp))
    np.testing.assert_array_equal(clone.transform(X), plain.transform(X))
    assert not hasattr(ddp._net, "_data_parallel") or ddp._net._data_parallel is None


def test_world_of_one_partial_fit_and_shuffle(world_of_one):
    X = _low_rank(60)
    est = skae.AutoencoderTransformer(distributed=True, **COMMON)
    for _ in range(3):
        est.partial_fit(X)
    assert est.n_iter_ == 3 and est.t_ == 180
    assert est.loss_curve_[-1] < est.loss_curve_[0]


# ----------------------------------------------------------------------
# slow: 2 ranks, gloo on 127.0.0.1
# ----------------------------------------------------------------------
def _cases(tmp):
    X = _low_rank()
    data, labels = str(tmp / "X.npy"), str(tmp / "y.npy")
    np.save(data, X)
    np.save(labels, _labels(X))
    cases = []
    for cls, extra in EQUIVALENT.items():
        params = dict(COMMON, shuffle=False, alpha=0.0, batch_size=BATCH, **extra)
        cases.append(dict(name="eq_" + cls, cls=cls, params=params, data=data,
                          zero_eps=cls == "VariationalAE"))
    for name, (cls, extra) in EXTRA_EQUIVALENT.items():
        params = dict(COMMON, shuffle=False, alpha=0.0, batch_size=BATCH)
        params.update(extra)
        y = labels if "fine_tune" in extra else None
        cases.append(dict(name="eq_" + name, cls=cls, params=params, data=data, y=y))
    for cls in EQUIVALENT:  # shuffled, noisy, random_state=None: rank 0's seed
        params = dict(COMMON, random_state=None, batch_size=BATCH, early_stopping=True)
        cases.append(dict(name="shuffled_" + cls, cls=cls, params=params, data=data))
    cases.append(dict(name="partial_fit_memmap", cls="AutoencoderTransformer",
                      params=dict(COMMON, random_state=None), data=data, memmap=True,
                      method="partial_fit", calls=3))
    cases.append(dict(name="verbose", cls="StackedAE", data=data,
                      params=dict(COMMON, verbose=1, max_iter=2, pretrain_max_iter=1)))
    bad = dict(cls="AutoencoderTransformer", params=COMMON, data=data, bad_rank=1)
    cases.append(dict(bad, name="bad_nan", bad="nan"))
    cases.append(dict(bad, name="bad_rows", bad="rows"))
    cases.append(dict(bad, name="dies", bad_rank=None, die_rank=1))  # last: breaks the group
    return X, cases


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    X, cases = _cases(tmp)
    results = launch(cases, tmp, world=WORLD, timeout=400, pg_timeout=30)
    outputs = {}
    for case in cases:
        outputs[case["name"]] = [
            dict(np.load(tmp / f"{case['name']}.rank{r}.npz")) if
            os.path.exists(tmp / f"{case['name']}.rank{r}.npz") else None
            for r in range(WORLD)
        ]
    return X, {c["name"]: c for c in cases}, outputs, results


def _weights(out):
    return {k[2:]: v for k, v in out.items() if k.startswith("w.")}


def _assert_ranks_identical(outs):
    assert "error" not in outs[0], outs[0].get("error")
    for k, v in outs[0].items():
        np.testing.assert_array_equal(outs[1][k], v, err_msg=k)


@pytest.mark.slow
@pytest.mark.parametrize("name", [*EQUIVALENT, *EXTRA_EQUIVALENT])
def test_two_ranks_equal_one_process_with_twice_the_batch(two_ranks, name, monkeypatch):
    X, cases, outputs, _ = two_ranks
    case, outs = cases["eq_" + name], outputs["eq_" + name]
    _assert_ranks_identical(outs)
    if case.get("zero_eps"):
        monkeypatch.setattr(skae._modules, "standard_normal", torch.zeros_like)
    params = dict(case["params"], batch_size=WORLD * BATCH)
    y = _labels(X) if case.get("y") else None
    single = fit_quietly(getattr(skae, case["cls"])(**params), X, y)
    diffs = {k: np.abs(outs[0]["w." + k] - v).max() for k, v in _state(single).items()}
    print(name, "max |w_2ranks - w_1process| =", max(diffs.values()))
    assert max(diffs.values()) < 1e-5, diffs
    np.testing.assert_allclose(outs[0]["loss_curve"], single.loss_curve_, rtol=1e-5)
    if "validation_scores" in outs[0]:
        np.testing.assert_allclose(
            outs[0]["validation_scores"], single.validation_scores_, rtol=1e-5
        )


@pytest.mark.slow
@pytest.mark.parametrize("cls", list(EQUIVALENT))
def test_shuffled_noisy_ranks_end_bit_identical(two_ranks, cls):
    _, _, outputs, _ = two_ranks
    outs = outputs["shuffled_" + cls]
    _assert_ranks_identical(outs)
    # Early stopping: the all-reduced score stops both ranks together.
    assert len(outs[0]["validation_scores"]) == len(outs[1]["validation_scores"]) >= 1
    assert outs[0]["loss_curve"][-1] < outs[0]["loss_curve"][0]


@pytest.mark.slow
def test_partial_fit_over_a_memmap_on_two_ranks(two_ranks):
    _, _, outputs, _ = two_ranks
    outs = outputs["partial_fit_memmap"]
    _assert_ranks_identical(outs)
    assert len(outs[0]["loss_curve"]) == 3


@pytest.mark.slow
def test_the_log_prints_on_rank_0_only(two_ranks):
    _, _, outputs, _ = two_ranks
    lead, other = (str(out["stdout"]) for out in outputs["verbose"])
    assert "Pretraining layer 1/2" in lead and "train_loss" in lead, lead
    assert other == ""


@pytest.mark.slow
def test_bad_input_on_one_rank_fails_every_rank(two_ranks):
    _, _, outputs, _ = two_ranks
    nan = outputs["bad_nan"]
    assert "NaN" in str(nan[1]["error"]), nan[1]
    assert "rank(s) [1] failed before training" in str(nan[0]["error"]), nan[0]
    rows = outputs["bad_rows"]
    for out in rows:  # the same error on both ranks
        assert "needs the same X on every rank" in str(out["error"])
        assert "rank 0: 210 x 16, rank 1: 207 x 16" in str(out["error"])


@pytest.mark.slow
def test_a_rank_that_dies_in_training_does_not_hang_the_other(two_ranks):
    _, _, outputs, results = two_ranks
    assert results[1][0] == 3  # rank 1 exited in training
    assert outputs["dies"][1] is None
    assert "error" in outputs["dies"][0]  # rank 0 raised instead of waiting forever
