"""PyTorch Lightning's ``MLFlowLogger``, as its users use it, logs into chachaml (issue 19).

Two trainings of a tiny CPU model (one that learns, one with a learning rate of 0) log through
Lightning's own logger with only ``MLFLOW_TRACKING_URI`` set; their metric histories are
chachaml's, by step, and an agent's ``best_run`` (the MCP server, in memory) picks the run
that learned. On SQLite only: an integration, whose MLflow calls (runs, params, log_batch,
history) the protocol tests cover on both databases. The server, store and client-runner
fixtures are those of ``test_mlflow_client``.
"""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from chachaml.server.mcp.server import build_mcp
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.tools import metrics as metric_ops
from chachaml.tools import runs as run_ops
from tests.e2e.test_mlflow_client import run_client, server, store_url  # noqa: F401 (fixtures)
from tests.support.fork_scripts import ONE_WORKER
from tests.support.serve_proc import ServeProcess

pytestmark = ONE_WORKER

TRAIN = """
    import json
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.loggers import MLFlowLogger
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    data = TensorDataset(x, 3 * x + 1)

    class Line(pl.LightningModule):
        def __init__(self, lr):
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(1, 1)

        def training_step(self, batch, _):
            loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, _):
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    runs = {}
    for lr in (0.5, 0.0):
        logger = MLFlowLogger(experiment_name="lightning", run_name=f"lr-{lr}")
        trainer = pl.Trainer(
            max_epochs=3, logger=logger, log_every_n_steps=1, accelerator="cpu",
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        )
        trainer.fit(Line(lr), DataLoader(data, batch_size=8), DataLoader(data, batch_size=32))
        runs[str(lr)] = logger.run_id
    print(json.dumps(runs))
"""


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_lightnings_mlflow_logger_logs_steps_that_best_run_answers_over(
    server: ServeProcess,  # noqa: F811 (a fixture)
    store_url: str,  # noqa: F811 (a fixture)
) -> None:
    runs = run_client(TRAIN, {"MLFLOW_TRACKING_URI": server.url})
    learned, stuck = runs["0.5"], runs["0.0"]

    async def native() -> None:
        store = await open_store(store_url)
        try:
            for rid, lr in ((learned, "0.5"), (stuck, "0.0")):
                run = await run_ops.get_run(store, rid)
                assert (run.experiment, run.name, run.status) == ("lightning", f"lr-{lr}",
                                                                  "completed")  # fmt: skip
                assert run.params == {"lr": lr}  # save_hyperparameters
                train = await metric_ops.metric_history(store, rid, "train_loss")
                assert train.steps == list(range(12))  # 4 batches x 3 epochs, every step
                val = await metric_ops.metric_history(store, rid, "val_loss")
                assert val.steps == [3, 7, 11]  # at each epoch's last step
            last = (await metric_ops.metric_history(store, learned, "val_loss")).values[-1]
            assert last is not None and last < 0.05  # it learned y = 3x + 1
            server_mcp = build_mcp(store, artifacts=open_artifact_store(str(server.artifacts)))
            async with Client(server_mcp) as mcp:
                best = await mcp.call_tool(
                    "best_run", {"metric": "val_loss", "experiment": "lightning",
                                 "direction": "min"},
                )  # fmt: skip
            assert not best.is_error
            found = (best.structured_content or {})["best"]
            assert (found["run"]["id"], found["step"]) == (learned, 11)
        finally:
            await store.close()

    anyio.run(native)
