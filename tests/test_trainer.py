import pytest
import torch

from aekit.exceptions import TrainingDivergedError
from aekit.models import DenseAutoencoder, DenseConfig
from aekit.training import Callback, EarlyStopping, ReconstructionObjective, Trainer, batch_bounds


def make_trainer(callbacks=(), max_epochs=20, lr=1e-2, objective=None):
    torch.manual_seed(0)
    model = DenseAutoencoder(DenseConfig(input_dim=6, latent_dim=2, hidden_dims=(8,)))
    return Trainer(
        model,
        objective or ReconstructionObjective("mse"),
        torch.optim.Adam(model.parameters(), lr=lr),
        batch_size=16,
        max_epochs=max_epochs,
        generator=torch.Generator().manual_seed(0),
        callbacks=callbacks,
    )


def data(n=64, seed=0):
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "n_rows, batch_size, expected",
    [
        (10, 4, [(0, 4), (4, 8), (8, 10)]),
        (9, 4, [(0, 4), (4, 9)]),  # a last batch of one row joins the previous one
        (3, 256, [(0, 3)]),  # batch size clipped to the rows
        (1, 4, [(0, 1)]),
    ],
)
def test_batch_bounds(n_rows, batch_size, expected):
    assert batch_bounds(n_rows, batch_size) == expected


def test_history_records_every_epoch():
    trainer = make_trainer(max_epochs=5)
    history = trainer.fit(data(), data(16, seed=1))
    assert history.n_epochs == 5
    assert len(history.val_loss) == 5
    assert all(v is not None for v in history.val_loss)
    assert history.learning_rate == [1e-2] * 5
    assert history.train_loss[-1] < history.train_loss[0]


def test_early_stopping_restores_best_weights():
    stopper = EarlyStopping(patience=3)
    trainer = make_trainer(callbacks=[stopper], max_epochs=300, lr=5e-2)
    x_val = data(16, seed=1)
    history = trainer.fit(data(32), x_val)

    assert history.stopped_early
    assert history.n_epochs < 300
    best_index = history.best_epoch - 1
    assert history.val_loss[best_index] == min(history.val_loss)
    assert history.n_epochs - history.best_epoch == 3
    # The restored weights reproduce the best epoch's validation loss.
    assert trainer.evaluate(x_val) == pytest.approx(history.val_loss[best_index], rel=1e-6)


def test_callbacks_see_every_hook():
    calls = []

    class Recorder(Callback):
        def on_fit_start(self, trainer):
            calls.append("fit_start")

        def on_epoch_end(self, trainer, epoch, logs):
            calls.append(("epoch", epoch, sorted(logs)))

        def on_fit_end(self, trainer):
            calls.append("fit_end")

    make_trainer(callbacks=[Recorder()], max_epochs=2).fit(data())
    assert calls[0] == "fit_start"
    assert calls[-1] == "fit_end"
    assert calls[1] == ("epoch", 1, ["learning_rate", "seconds", "train_loss", "val_loss"])


def test_divergence_names_epoch_and_batch():
    class ExplodesAtThirdBatch:
        def __init__(self):
            self.steps = 0
            self.inner = ReconstructionObjective()

        def __call__(self, model, x):
            losses = self.inner(model, x)
            self.steps += 1
            if model.training and self.steps == 7:  # epoch 2, batch 3 with 4 batches per epoch
                losses["loss"] = losses["loss"] * float("nan")
            return losses

    trainer = make_trainer(objective=ExplodesAtThirdBatch(), max_epochs=5)
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, batch 3 of 4; lower the learning_rate"):
        trainer.fit(data())
