"""BernoulliRBMStack and the RBM math: likelihoods against enumeration, AIS against exact log Z,
the DBN bound against the exact DBN likelihood, the CD update, and behaviour a user relies on."""

import pickle
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import BernoulliRBM

from sklearn_ae import AutoencoderTransformer, BernoulliRBMStack
from sklearn_ae import _likelihoods as L
from sklearn_ae._modules import RBM, FreeEnergyGap

FAST = dict(max_iter=5, random_state=0, device="cpu")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def all_states(n):
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.float64)


def np_free_energy(v, W, c, b):
    return -v @ b - np.logaddexp(0.0, v @ W + c).sum(-1)


@pytest.fixture
def X10(rng):
    """Binary data with structure: 10 features, two correlated halves."""
    X = (rng.rand(300, 10) < np.linspace(0.2, 0.8, 10)).astype(np.float64)
    X[:150, 5:] = X[:150, :5]
    return X


# ------------------------------------------------------------------------ the math
@pytest.mark.parametrize("n_visible, n_hidden", [(7, 4), (4, 7)])
def test_exact_log_partition_matches_joint_enumeration(n_visible, n_hidden):
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(n_visible, n_hidden, generator=gen, dtype=torch.float64)
    c = torch.randn(n_hidden, generator=gen, dtype=torch.float64)
    b = torch.randn(n_visible, generator=gen, dtype=torch.float64)
    V, H = all_states(n_visible), all_states(n_hidden)
    energy = -(V @ W.numpy() @ H.T) - (V @ b.numpy())[:, None] - (H @ c.numpy())[None, :]
    expected = logsumexp(-energy)
    assert L.rbm_log_partition_exact(W, c, b) == pytest.approx(expected, abs=1e-10)
    # the free energy sums the hidden units out of the joint
    np.testing.assert_allclose(L.rbm_free_energy(torch.from_numpy(V), W, c, b).numpy(),
                               -logsumexp(-energy, axis=1), rtol=1e-12)


def test_ais_matches_exact_on_random_rbm():
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(20, 8, generator=gen, dtype=torch.float64) * 0.5
    c = torch.randn(8, generator=gen, dtype=torch.float64) * 0.3
    b = torch.randn(20, generator=gen, dtype=torch.float64) * 0.3
    exact = L.rbm_log_partition_exact(W, c, b)
    log_z, log_w = L.rbm_log_partition_ais(W, c, b, torch.zeros(20, dtype=torch.float64),
                                          n_runs=50, n_betas=1000,
                                          generator=torch.Generator().manual_seed(1))
    assert log_w.shape == (50,)
    assert log_z == pytest.approx(exact, abs=0.05)


def test_ais_schedule():
    betas = L.ais_betas(14500)
    assert len(betas) == 14501 and betas[0] == 0 and betas[-1] == 1
    assert torch.all(torch.diff(betas) > 0)
    assert int((betas < 0.5).sum()) == 500 and int((betas < 0.9).sum()) == 4500


def test_cd_gradient_is_gradient_of_free_energy_gap():
    """The closed-form backward equals autograd on mean(F(v) - F(v_model.detach()))."""
    gen = torch.Generator().manual_seed(0)
    rbm = RBM(9, 5, gen, seed=3, n_gibbs_steps=2, persistent=False).double()
    with torch.no_grad():
        rbm.weight.normal_(0, 0.5, generator=gen)
        rbm.hidden_bias.normal_(0, 0.5, generator=gen)
        rbm.visible_bias.normal_(0, 0.5, generator=gen)
    v = (torch.rand(6, 9, generator=gen) > 0.5).double()
    loss = FreeEnergyGap()(rbm(v), v)
    loss.backward()
    ours = [p.grad.clone() for p in (rbm.weight, rbm.hidden_bias, rbm.visible_bias)]
    # replay the same chain: same seed, fresh generator
    rbm.zero_grad()
    rbm._generator = None
    gen2 = rbm.generator(v.device)
    with torch.no_grad():
        h = rbm.bernoulli(rbm.hidden_probs(v), gen2)
        v_model, _ = rbm.gibbs(h, 2, gen2)
    reference = (rbm.free_energy(v) - rbm.free_energy(v_model.detach())).mean()
    reference.backward()
    assert float(loss.detach()) == pytest.approx(float(reference.detach()), rel=1e-12)
    for a, p in zip(ours, (rbm.weight, rbm.hidden_bias, rbm.visible_bias)):
        torch.testing.assert_close(a, p.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_closed_form_cd_gradients_are_autograds(weighted):
    """``rbm_cd_gradients`` (what training runs) is autograd's gradient of
    sum_n g_n [F(v_n) - F(v_model_n)], v_model held constant, for per-sample weights g or one
    weight for all (1/n: the batch mean); ``rbm_free_energy_gap`` is F(v) - F(v_model)."""
    from sklearn_ae._likelihoods import rbm_cd_gradients, rbm_free_energy, rbm_free_energy_gap

    gen = torch.Generator().manual_seed(1)
    weight, hidden_bias, visible_bias = (torch.randn(*shape, generator=gen, dtype=torch.float64,
                                                     requires_grad=True) for shape in ((9, 5), (5,), (9,)))
    v, v_model = ((torch.rand(6, 9, generator=gen) > 0.5).double() for _ in range(2))
    g = torch.rand(6, generator=gen, dtype=torch.float64) if weighted else torch.full((6,), 1 / 6, dtype=torch.float64)
    gap = rbm_free_energy(v, weight, hidden_bias, visible_bias) - rbm_free_energy(v_model, weight, hidden_bias,
                                                                                  visible_bias)
    (gap * g).sum().backward()
    with torch.no_grad():
        x_data, x_model = (x @ weight + hidden_bias for x in (v, v_model))
        torch.testing.assert_close(rbm_free_energy_gap(v, x_data, v_model, x_model, visible_bias), gap)
        ours = rbm_cd_gradients(v, torch.sigmoid(x_data), v_model, torch.sigmoid(x_model),
                                g if weighted else 1 / 6)
    for mine, param in zip(ours, (weight, hidden_bias, visible_bias)):
        torch.testing.assert_close(mine, param.grad, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------- likelihoods
@pytest.mark.parametrize("n_components", [6, 13])
def test_single_rbm_likelihood_is_normalised(X10, n_components):
    """exp(score_samples) sums to 1 over all 1,024 states of a 10-visible RBM (enumerating the
    hidden side for 6 units, the visible side for 13)."""
    rbm = BernoulliRBMStack(n_components=n_components, learning_rate=0.05, **FAST).fit(X10)
    scores = rbm.score_samples(all_states(10))
    assert np.exp(scores).sum() == pytest.approx(1.0, abs=1e-9)
    assert rbm.log_partition_info_["method"] == "exact"
    assert rbm.score(X10) > np.log(1 / 1024)  # better than uniform after training
    # cached: the same values again, and log_partition_ is the one used
    np.testing.assert_array_equal(rbm.score_samples(X10[:5]), rbm.score_samples(X10[:5]))
    W, c, b = rbm.coefs_[0], rbm.intercepts_hidden_[0], rbm.intercepts_visible_[0]
    np.testing.assert_allclose(rbm.score_samples(X10[:5]),
                               -np_free_energy(X10[:5], W, c, b) - rbm.log_partition_, rtol=1e-5)


def test_ais_within_quarter_nat_of_exact_on_binarized_mnist(shared_data):
    """15 hidden units trained on binarized MNIST; AIS with the published schedule size (14,500
    intermediate distributions, 100 runs) against enumeration of the 2**15 hidden states."""
    X = np.load(shared_data / "mnist" / "binarized_mnist_static.npz")["train"][:5000].astype(np.float32)
    rbm = BernoulliRBMStack(n_components=15, learning_rate=0.05, batch_size=50, max_iter=3,
                            random_state=0, device="cpu").fit(X)
    exact = rbm.log_partition_  # auto: 15 hidden units are enumerated
    assert rbm.log_partition_info_["method"] == "exact"
    rbm.set_params(log_partition="ais", n_ais_runs=100, n_ais_betas=14500)
    start = time.perf_counter()
    info = rbm.log_partition_info_
    elapsed = time.perf_counter() - start
    assert info["method"] == "ais" and info["n_betas"] == 14500
    assert abs(info["log_partition"] - exact) < 0.25
    assert info["stderr"] < 0.25
    print(f"AIS 14,500 betas x 100 runs: {elapsed:.1f}s, log Z {info['log_partition']:.3f} "
          f"vs exact {exact:.3f}, log-weight sd {info['log_weight_std']:.3f}")
    # scores use the log Z of the current setting
    rbm.set_params(log_partition="exact")
    np.testing.assert_allclose(rbm.score_samples(X[:3]).mean() + exact,
                               -np.mean(np_free_energy(X[:3].astype(np.float64), rbm.coefs_[0],
                                                       rbm.intercepts_hidden_[0],
                                                       rbm.intercepts_visible_[0])), rtol=1e-5)


def test_ais_warns_when_annealing_has_not_converged(rng):
    """A sharply multimodal RBM (four prototypes of 100 pixels): 10 betas underestimate log Z
    by tens of nats, and the estimator says so."""
    prototypes = rng.rand(4, 100) > 0.5
    X = prototypes[rng.randint(0, 4, 2000)]
    X = np.where(rng.rand(*X.shape) < 0.03, ~X, X).astype(np.float32)
    rbm = BernoulliRBMStack(n_components=12, learning_rate=0.1, batch_size=20, max_iter=10,
                            random_state=0, device="cpu").fit(X)
    exact = rbm.log_partition_
    rbm.set_params(log_partition="ais", n_ais_betas=10)
    with pytest.warns(UserWarning, match="AIS has not converged"):
        short = rbm.log_partition_
    assert short < exact - 5
    info = rbm.log_partition_info_
    assert info["effective_sample_size"] < 10 and info["log_weight_std"] > 2


def exact_dbn_log_likelihood(stack, V):
    """log p(v) of a two-layer DBN by enumerating the first hidden layer and the top RBM."""
    W1, c1, b1 = (a.astype(np.float64) for a in (stack.coefs_[0], stack.intercepts_hidden_[0],
                                                 stack.intercepts_visible_[0]))
    W2, c2, b2 = (a.astype(np.float64) for a in (stack.coefs_[1], stack.intercepts_hidden_[1],
                                                 stack.intercepts_visible_[1]))
    H1 = all_states(W1.shape[1])
    log_p_h1 = -np_free_energy(H1, W2, c2, b2)
    log_p_h1 -= logsumexp(log_p_h1)  # the top RBM's normalised marginal on h1
    logits = H1 @ W1.T + b1  # (n_h1_states, n_visible)
    log_p_v_h1 = (V[:, None, :] * logits[None] - np.logaddexp(0.0, logits)[None]).sum(-1)
    return logsumexp(log_p_v_h1 + log_p_h1[None], axis=1)


def test_stack_bound_below_exact_and_tightening(X10):
    stack = BernoulliRBMStack(n_components=4, hidden_layer_sizes=(6,), learning_rate=0.1,
                              learning_rate_schedule="constant", persistent=True, max_iter=100,
                              random_state=0, device="cpu").fit(X10)
    V = all_states(10)
    exact = exact_dbn_log_likelihood(stack, V)
    assert np.exp(exact).sum() == pytest.approx(1.0, abs=1e-9)
    gaps = {}
    for k, n_seeds in ((1, 200), (10, 40), (300, 20)):
        stack.set_params(n_importance_samples=k)
        # independent importance-sample seeds estimate the expectation of the bound
        bounds = []
        for seed in range(n_seeds):
            stack._bound_seed = seed
            bounds.append(stack.score_samples(V))
        excess = np.array(bounds) - exact  # (seeds, states)
        per_seed = excess.mean(1)
        # in expectation the bound is below log p(v): over all states, and state by state
        assert per_seed.mean() <= 4 * per_seed.std() / np.sqrt(len(per_seed)) + 1e-6, k
        if k >= 300:  # few samples are too noisy to judge state by state
            se = excess.std(0).mean() / np.sqrt(n_seeds)  # pooled over the states: 20 seeds each
            assert np.all(excess.mean(0) <= 5 * se), k
        gaps[k] = (-float(per_seed.mean()), float(per_seed.std() / np.sqrt(len(per_seed))))
    # the bound tightens with K in expectation: each step judged within its standard errors
    for small, large in ((1, 10), (10, 300)):
        (gap_small, se_small), (gap_large, se_large) = gaps[small], gaps[large]
        assert gap_small > gap_large - 3 * np.hypot(se_small, se_large), (small, large, gaps)
    assert gaps[1][0] > 4 * gaps[1][1] and abs(gaps[300][0]) < 0.01  # a real gap at K = 1


def test_score_samples_independent_of_batch_composition(X10):
    stack = BernoulliRBMStack(n_components=3, hidden_layer_sizes=(5,), n_importance_samples=20,
                              **FAST).fit(X10)
    full = stack.score_samples(X10)
    np.testing.assert_allclose(stack.score_samples(X10[7:19]), full[7:19], rtol=1e-6)
    np.testing.assert_array_equal(stack.score_samples(X10), full)


# ------------------------------------------------------------------- estimator
def test_shapes_transform_inverse_transform_sample(X10):
    stack = BernoulliRBMStack(n_components=3, hidden_layer_sizes=(8, 5), **FAST).fit(X10)
    assert [c.shape for c in stack.coefs_] == [(10, 8), (8, 5), (5, 3)]
    assert [len(b) for b in stack.intercepts_hidden_] == [8, 5, 3]
    assert [len(b) for b in stack.intercepts_visible_] == [10, 8, 5]
    assert len(stack.loss_curves_) == 3 and stack.loss_curve_ == stack.loss_curves_[-1]
    assert stack.n_iter_ == 5 and len(stack.nets_) == 3 and stack.net_ is stack.nets_[-1]
    H = stack.transform(X10)
    assert H.shape == (300, 3) and np.all((H > 0) & (H < 1))
    # the up-pass by hand
    h = X10
    for W, c in zip(stack.coefs_, stack.intercepts_hidden_):
        h = 1 / (1 + np.exp(-(h @ W + c)))
    np.testing.assert_allclose(H, h, rtol=1e-5)
    R = stack.inverse_transform(H)
    assert R.shape == X10.shape and np.all((R > 0) & (R < 1))
    S = stack.sample(7, random_state=0, n_steps=50)
    assert S.shape == (7, 10) and set(np.unique(S)) <= {0.0, 1.0}
    np.testing.assert_array_equal(S, stack.sample(7, random_state=0, n_steps=50))


def test_dtype_follows_input(X10):
    rbm = BernoulliRBMStack(n_components=4, **FAST).fit(X10.astype(np.float32))
    assert rbm.transform(X10.astype(np.float32)).dtype == np.float32
    assert rbm.transform(X10).dtype == np.float64
    np.testing.assert_allclose(rbm.transform(X10), rbm.transform(X10.astype(np.float32)), rtol=1e-5)


def test_sparse_input_matches_dense(X10):
    dense = BernoulliRBMStack(n_components=4, **FAST).fit(X10)
    sparse = BernoulliRBMStack(n_components=4, **FAST).fit(sp.csr_matrix(X10))
    np.testing.assert_allclose(dense.transform(X10), sparse.transform(sp.csr_matrix(X10)), rtol=1e-6)
    np.testing.assert_allclose(dense.score_samples(X10), sparse.score_samples(sp.csr_matrix(X10)),
                               rtol=1e-6)
    np.testing.assert_allclose(dense.pseudo_likelihood(X10), sparse.pseudo_likelihood(sp.csr_matrix(X10)),
                               rtol=1e-6)


def test_range_round_off_clipped_beyond_rejected(X10):
    rbm = BernoulliRBMStack(n_components=4, **FAST).fit(X10)
    nudged = X10.copy()
    nudged[0, 0], nudged[1, 1] = 1.0 + 1e-7, -1e-7
    np.testing.assert_allclose(rbm.transform(nudged)[:2], rbm.transform(np.clip(nudged, 0, 1))[:2])
    with pytest.raises(ValueError, match=r"\[0, 1\].*from -0\.5 to 0\.5.*MinMaxScaler"):
        rbm.transform(X10 - 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BernoulliRBMStack(**FAST).fit(X10 * 2)


def test_pseudo_likelihood_is_sklearns_measure(X10):
    """Same formula as BernoulliRBM.score_samples: copy our weights into a BernoulliRBM."""
    rbm = BernoulliRBMStack(n_components=4, **FAST).fit(X10)
    sk = BernoulliRBM(n_components=4, random_state=0).fit(X10[:20])
    sk.components_ = rbm.coefs_[0].T.astype(np.float64)
    sk.intercept_hidden_ = rbm.intercepts_hidden_[0].astype(np.float64)
    sk.intercept_visible_ = rbm.intercepts_visible_[0].astype(np.float64)
    sk.random_state = 0
    np.testing.assert_allclose(rbm.pseudo_likelihood(X10), sk.score_samples(X10), rtol=1e-5)


def test_reproducible_and_pickles(X10):
    a = BernoulliRBMStack(n_components=4, hidden_layer_sizes=(5,), **FAST).fit(X10)
    b = BernoulliRBMStack(n_components=4, hidden_layer_sizes=(5,), **FAST).fit(X10)
    np.testing.assert_array_equal(a.transform(X10), b.transform(X10))
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a.score_samples(X10), c.score_samples(X10))
    # training continues identically after a round trip (chains and generators included)
    a.partial_fit(X10)
    c.partial_fit(X10)
    np.testing.assert_array_equal(a.coefs_[0], c.coefs_[0])


def test_partial_fit_updates_every_layer(X10):
    stack = BernoulliRBMStack(n_components=3, hidden_layer_sizes=(5,), random_state=0, device="cpu")
    assert stack.partial_fit(X10[:100]) is stack
    before = [c.copy() for c in stack.coefs_]
    stack.partial_fit(X10[100:])
    assert all(not np.array_equal(a, b) for a, b in zip(before, stack.coefs_))
    assert stack.n_iter_ == 2 and float(stack.net_.module_.input_count) == 300
    assert np.isfinite(stack.score(X10))


def test_cd_k_and_momentum_and_weight_decay(X10):
    base = BernoulliRBMStack(n_components=4, **FAST).fit(X10)
    for params in (dict(persistent=False, n_gibbs_steps=3), dict(momentum=0.5), dict(alpha=0.1)):
        other = BernoulliRBMStack(n_components=4, **FAST, **params).fit(X10)
        assert not np.allclose(base.coefs_[0], other.coefs_[0]), params
    decayed = BernoulliRBMStack(n_components=4, alpha=0.5, **FAST).fit(X10)
    assert np.abs(decayed.coefs_[0]).sum() < np.abs(base.coefs_[0]).sum()


def test_not_fitted_and_verbose(X10, capsys):
    rbm = BernoulliRBMStack(n_components=4, **FAST)
    with pytest.raises(NotFittedError):
        rbm.transform(X10)
    with pytest.raises(NotFittedError):
        rbm.log_partition_
    rbm.set_params(verbose=2, max_iter=2).fit(X10)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[BernoulliRBMStack] Iteration 1, loss = ")


def test_digits_features_close_to_sklearn():
    """A short version of scikit-learn's RBM-features protocol: the features of the drop-in serve
    a logistic regression as well as BernoulliRBM's (one seed, 3 epochs)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    accuracy = []
    for model in (BernoulliRBM(n_components=64, learning_rate=0.06, batch_size=10, n_iter=3,
                               random_state=0),
                  BernoulliRBMStack(n_components=64, learning_rate=0.06, batch_size=10, max_iter=3,
                                    random_state=0, device="cpu")):
        model.fit(X_train)
        clf = LogisticRegression(C=100, max_iter=2000).fit(model.transform(X_train), y_train)
        accuracy.append(clf.score(model.transform(X_test), y_test))
    assert accuracy[1] >= accuracy[0] - 0.03, accuracy


# ---------------------------------------------------------- autoencoder pretraining
def test_autoencoder_rbm_pretraining(X10):
    pre = BernoulliRBMStack(n_components=3, hidden_layer_sizes=(6,), learning_rate=0.1,
                            max_iter=20, random_state=0, device="cpu")
    ae = AutoencoderTransformer(n_components=3, hidden_layer_sizes=(6,), activation="logistic",
                                likelihood="bernoulli", pretraining=pre, max_iter=1,
                                learning_rate_init=1e-12, random_state=0, device="cpu").fit(X10)
    # with a negligible fine-tuning step the encoder is the RBM stack's up-pass (code = top logits)
    stack = ae.pretrained_
    H = stack.transform(X10)
    np.testing.assert_allclose(1 / (1 + np.exp(-ae.transform(X10))), H, rtol=1e-4, atol=1e-6)
    # tanh networks get the same function, rescaled
    ae_tanh = AutoencoderTransformer(n_components=3, hidden_layer_sizes=(6,), activation="tanh",
                                     likelihood="bernoulli", pretraining=pre, max_iter=1,
                                     learning_rate_init=1e-12, random_state=0, device="cpu").fit(X10)
    np.testing.assert_allclose(ae_tanh.transform(X10), ae.transform(X10), rtol=1e-4, atol=1e-5)
    # the default pretraining fine-tunes to a better reconstruction than the RBM alone
    tuned = AutoencoderTransformer(n_components=3, hidden_layer_sizes=(6,), activation="logistic",
                                   likelihood="bernoulli", pretraining="rbm", max_iter=50,
                                   random_state=0, device="cpu").fit(X10)
    assert tuned.score(X10) > ae.score(X10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        AutoencoderTransformer(pretraining="rbm", device="cpu").fit(X10 - 0.5)
    with pytest.raises(ValueError, match="activation"):
        AutoencoderTransformer(pretraining="rbm", activation="relu", device="cpu").fit(X10)


def test_exact_log_partition_refuses_huge_enumeration(rng):
    X = (rng.rand(40, 36) > 0.5).astype(np.float64)
    rbm = BernoulliRBMStack(n_components=33, log_partition="exact", max_iter=1, device="cpu").fit(X)
    with pytest.raises(ValueError, match="2\\*\\*33 states.*log_partition='ais'"):
        rbm.score_samples(X)
