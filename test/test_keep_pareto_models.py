"""keep_pareto_models: the search keeps the Pareto front's models and export reuses them."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from search_algorithms.objectives import pareto_front

REPOSITORY = Path(__file__).resolve().parents[1]

CONFIG = """
import keras
from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import Digits

training_config = TrainingConfig(dataset=Digits(),
                                 optimizer=lambda: keras.optimizers.Adam(0.01),
                                 batch_size=64, epochs=2)
search_config = AgingEvoConfig(search_space=CnnSearchSpace(), population_size=3,
                               sample_size=2, rounds=4, max_parallel_evaluations=2,
                               keep_pareto_models=True)
bound_config = BoundConfig(error_bound=1.0, peak_mem_bound=10**6, model_size_bound=10**7,
                           mac_bound=10**9)
"""


def run(command):
    return subprocess.run([sys.executable, *command], cwd=REPOSITORY, capture_output=True,
                          text=True, timeout=600)


def test_front_models_kept_and_exported(tmp_path):
    config = tmp_path / "keep.py"
    config.write_text(textwrap.dedent(CONFIG))

    search = run([str(REPOSITORY / "driver.py"), str(config), "--name", "keep",
                  "--output-dir", str(tmp_path)])
    assert search.returncode == 0, search.stderr[-3000:]

    run_dir = tmp_path / "keep"
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    bounds = json.loads((run_dir / "run.json").read_text())["config"]["bounds"]
    front_ids = {record["id"] for record in pareto_front(records, bounds)}
    kept_ids = {int(path.stem.split("_")[1]) for path in (run_dir / "models").glob("*.keras")}
    assert front_ids
    assert kept_ids == front_ids

    chosen = min(front_ids)
    export = run([str(REPOSITORY / "search_state_processor.py"), str(run_dir),
                  "--export", str(chosen), "--output-dir", str(tmp_path / "out")])
    assert export.returncode == 0, export.stderr[-3000:]
    card = json.loads((tmp_path / "out" / f"candidate_{chosen}" / "card.json").read_text())
    assert card["training"]["source"] == "kept by the search"
