"""Parameter and attribute descriptions that several estimators share, written once.

A class docstring names a shared entry (or a group of them, ``GROUPS``) with a line
``%(name)s`` in its Parameters or Attributes section; ``shared_docstring`` puts the entry there,
with the parameter's default read from the class's ``__init__`` and the class's own sentences
about it (``_docstring_notes``) after the shared text.
"""

import inspect
import re
import textwrap

PARAMETERS = {
    "hidden_layer_sizes": ("tuple of int", "Sizes of the encoder's intermediate layers; the decoder uses them in reverse."),
    "activation": ('{"tanh", "relu", "logistic", "identity"}', "Nonlinearity of the intermediate layers."),
    "likelihood": ('{"gaussian", "bernoulli"}',
                   'Observation model. ``"bernoulli"`` needs X in [0, 1] (use ``MinMaxScaler``).'),
    "noise_model": ('{"diagonal", "isotropic"}',
                    'Noise of ``likelihood="gaussian"``, fitted after training on the training '
                    'residuals. ``"diagonal"``: one variance per feature, its mean squared residual, '
                    "as in factor analysis; a feature constant in the training data (no evidence of "
                    "its own noise) takes the mean variance of the others. ``\"isotropic\"``: one "
                    "variance for every feature, the mean squared residual, as in probabilistic PCA. "
                    "See the user guide on the Gaussian noise model."),
    "alpha": ("float", "L2 penalty (Adam's weight decay) on the network's parameters."),
    "batch_size": ('int or "auto"', 'Minibatch size; ``"auto"`` is ``min(200, n_samples)``.'),
    "learning_rate_init": ("float", "Adam's learning rate."),
    "max_iter": ("int", "Maximum number of epochs."),
    "tol": ("float", "Improvement of the loss (or validation score) that counts as progress."),
    "n_iter_no_change": ("int", "Stop after this many epochs without progress of at least ``tol``."),
    "early_stopping": ("bool", "Hold out ``validation_fraction`` of the data, stop on the validation loss "
                               "and restore the weights of the best epoch."),
    "validation_fraction": ("float", "Fraction of the data held out when ``early_stopping=True`` (or when a "
                                     "callback monitors a validation metric, as skorch's ``EarlyStopping`` "
                                     "and ``Checkpoint`` do by default)."),
    "shuffle": ("bool", "Shuffle the training data every epoch."),
    "random_state": ("int, RandomState instance or None",
                     "Seeds weight initialisation, shuffling, the validation split and every sampling "
                     "of the model. The global random states of NumPy and torch are never touched."),
    "verbose": ("int", "0 is silent; 1 shows one progress bar over the epochs (of every layer, for a "
                       "stack), with the loss in it, and over long scoring; 2 adds one line per epoch."),
    "warm_start": ("bool", "Continue from the previous fit's weights when ``fit`` is called again; if "
                           "the architecture changed since, a new network is trained (with a warning)."),
    "device": ("str", '``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, or '
                      '``"accelerate"``: data parallelism over processes (several GPUs) through '
                      "skorch's Accelerate integration, for a script started by ``accelerate launch`` "
                      "or ``torchrun``."),
    "precision": ('{"float32", "tf32", "bf16"}',
                  'Arithmetic of training. ``"float32"``: full single precision. ``"tf32"``: matrix '
                  "products in TensorFloat-32 on CUDA (float32 on the CPU). ``\"bf16\"``: forward "
                  "passes under bfloat16 autocast (CUDA or CPU), parameters, gradients and the "
                  "optimizer in float32. Inference and ``score_samples`` compute in float32 (float64 for "
                  "float64 input) whatever the setting; see the user guide on training precision for "
                  "what the lower precisions cost in log-likelihood."),
    "callbacks": ("list of skorch callbacks or (name, callback) tuples",
                  "Extra callbacks for the skorch training loop, used as skorch users know them "
                  "(``EarlyStopping``, ``Checkpoint``, ``LRScheduler``, ``GradientNormClipping``, "
                  "...). A change takes effect at the next ``fit`` or ``partial_fit``."),
}

ATTRIBUTES = {
    "n_features_in_": ("int", "Number of features seen during fit."),
    "feature_names_in_": ("ndarray of shape (n_features_in_,)",
                          "Names of the features seen during fit, when X has string column names."),
    "n_iter_": ("int", "Number of epochs run (complete epochs, when training was interrupted)."),
    "loss_": ("float or None", "The last epoch's training loss, as ``MLPRegressor.loss_``."),
    "best_loss_": ("float or None", "The lowest training loss of an epoch; None under early stopping "
                                    "(see ``best_validation_score_``), as in ``MLPRegressor``."),
    "validation_scores_": ("list of float or None", "Negated validation loss per epoch, when a validation "
                                                    "set is held out."),
    "best_validation_score_": ("float or None", "Best of ``validation_scores_``."),
    "net_": ("skorch.NeuralNet", "The skorch net that trained the model. ``net_.save_params`` and "
                                 "``net_.load_params`` carry the weights and every statistic scoring "
                                 "needs (see the user guide on persistence)."),
    "module_": ("torch.nn.Module", "The trained network."),
}


#: placeholders that stand for several entries, in this order
GROUPS = {
    "training_parameters": ["alpha", "batch_size", "learning_rate_init", "max_iter", "tol", "n_iter_no_change",
                            "early_stopping", "validation_fraction", "shuffle", "random_state", "verbose",
                            "warm_start", "device", "precision", "callbacks"],
    "fit_attributes": ["n_features_in_", "feature_names_in_", "n_iter_"],
    "training_attributes": ["loss_", "best_loss_", "validation_scores_", "best_validation_score_"],
}


def _default(cls, name):
    value = inspect.signature(cls.__init__).parameters[name].default
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float) and value and abs(value) < 1e-2:
        return f"{value:.0e}".replace("e-0", "e-")
    return repr(value)


def _entry(indent, name, kind, text, default=None):
    head = f"{indent}{name} : {kind}" + ("" if default is None else f", default={default}")
    body = textwrap.fill(text, width=100, initial_indent=indent + "    ", subsequent_indent=indent + "    ")
    return f"{head}\n{body}"


def shared_docstring(cls):
    """Class decorator: fill the ``%(name)s`` lines of ``cls``'s docstring."""
    notes = cls.__dict__.get("_docstring_notes", {})  # class-specific sentences after an entry

    def one(indent, name):
        if name in PARAMETERS and name in inspect.signature(cls.__init__).parameters:
            kind, text = PARAMETERS[name]
            text = f"{text} {notes[name]}" if name in notes else text
            return _entry(indent, name, kind, text, default=_default(cls, name))
        return _entry(indent, name, *ATTRIBUTES[name])

    def fill(match):
        indent, name = match.group(1), match.group(2)
        return "\n".join(one(indent, n) for n in GROUPS.get(name, [name]))

    cls.__doc__ = re.sub(r"^( *)%\((\w+)\)s$", fill, cls.__doc__, flags=re.M)
    return cls
