"""The model card of an exported candidate: a JSON record and the same facts as Markdown."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from search_algorithms.objectives import RESOURCE_OBJECTIVES
from search_state.processor.summary import OBJECTIVE_LABELS, format_bounds, format_objective

logger = logging.getLogger(__name__)

#: Version of the card.json layout.
CARD_FORMAT_VERSION = 1
CARD_JSON_FILE = "card.json"
CARD_MARKDOWN_FILE = "card.md"


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def _count(number: object, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _bytes(value: int) -> str:
    return f"{value:,} B"


def compact_json(value: object, indent: int = 0) -> str:
    """Return ``value`` as indented JSON with each innermost object or list on one line."""
    def is_leaf(item: object) -> bool:
        children = item.values() if isinstance(item, dict) else item
        return not any(isinstance(child, (dict, list)) for child in children)

    if not isinstance(value, (dict, list)) or is_leaf(value):
        return json.dumps(value)
    inner = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(key)}: {compact_json(item, indent + 2)}"
                 for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{inner}{compact_json(item, indent + 2)}" for item in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def _resource_rows(card: dict) -> list[str]:
    predicted = card["predicted_resources"]
    bounds = card["bounds"]
    tflite = card["tflite"]
    tflm = card["tflm"]
    measured = {
        "peak_memory_bytes": f"{_bytes(tflm['head_bytes'])} (TFLM arena head: activations "
                             "and scratch buffers)",
        "model_size_bytes": f"{_bytes(tflite['weight_bytes'])} (weight and bias tensors in "
                            "the .tflite file)",
        "macs": "not measured",
    }
    rows = []
    for name in RESOURCE_OBJECTIVES:
        rows.append(f"| {OBJECTIVE_LABELS[name]} | {format_objective(name, predicted[name])} | "
                    f"{measured[name]} | {format_objective(name, bounds.get(name))} |")
    # The smallest accepted arena may differ from TFLM's reported total in either direction,
    # because allocation needs temporary space and alignment padding.
    rows.append(f"| TFLM tensor arena | | {_bytes(tflm['minimal_arena_bytes'])} (smallest "
                f"arena_size accepted; after allocation TFLM reports {_bytes(tflm['head_bytes'])} "
                f"head and {_bytes(tflm['tail_bytes'])} tail of bookkeeping, "
                f"{_bytes(tflm['total_bytes'])} in total) | |")
    rows.append(f"| .tflite file | | {_bytes(tflite['file_bytes'])} | |")
    return rows


def format_card_markdown(card: dict) -> str:
    """Return the card as a Markdown page."""
    accuracy = card["accuracy"]
    training = card["training"]
    search = card["search_result"]
    order = card["tflite"]["operator_order"]
    files = card["files"]
    order_text = "rewritten to" if order["reordered"] else "the converter order is already"
    lines = [
        f"# Candidate {card['candidate_id']} of run {card['run']['name']}",
        "",
        f"Found in round {card['run']['round']} of the search in `{card['run']['path']}`; "
        f"exported {card['created_at']}. Dataset: {card['dataset']['name']} "
        f"(input shape {tuple(card['dataset']['input_shape'])}, "
        f"{card['dataset']['num_classes']} classes).",
        "",
        "## Accuracy",
        "",
        "| model | validation | test |",
        "|---|---|---|",
        f"| float (Keras) | {_percent(accuracy['float_validation'])} | "
        f"{_percent(accuracy['float_test'])} |",
        f"| int8 (TFLite, LiteRT interpreter) | | {_percent(accuracy['int8_test'])} |",
        "",
        f"Trained for {training['epochs_run']} of {_count(training['epochs'], 'epoch')} "
        f"(batch size {training['batch_size']}, seed {training['seed']}, "
        f"{training['train_seconds']:.1f} s); "
        "the weights are those of the epoch with the best validation accuracy. During the "
        f"search this candidate reached a validation error of "
        f"{_percent(search['val_error'])} after {_count(search['epochs'], 'epoch')}.",
        "",
        "## Resources",
        "",
        "| | predicted (resource model) | measured | bound |",
        "|---|---|---|---|",
        *_resource_rows(card),
        "",
        f"Feasible under the run's bounds ({format_bounds(card['bounds'])}), with the "
        f"exported validation error: **{'yes' if card['feasible'] else 'no'}**.",
        "",
        f"Operator order: {order_text} an order of minimum peak memory usage "
        f"({_bytes(order['file_order_peak_bytes'])} in "
        f"the converter's order, {_bytes(order['peak_bytes'])} as exported, both computed on "
        "the graph read from the .tflite file).",
        "",
        "## Files",
        "",
        f"- `{files['keras']}`: the trained Keras model. Import `cnn` before "
        "`keras.saving.load_model`, because CNN models may use the custom ChannelPadding "
        "layer that it registers.",
        f"- `{files['tflite']}`: the int8 TFLite model (int8 input and output).",
        f"- `{files['c_source']}` and `{files['c_header']}`: the model as a C array and its "
        "arena size, for a TensorFlow Lite Micro project.",
        f"- `{CARD_JSON_FILE}`: this card as JSON.",
        "",
        "## Architecture",
        "",
        "```json",
        compact_json(card["architecture"]),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_card(card: dict, directory: Path) -> tuple[Path, Path]:
    """Write card.json and card.md into ``directory``; return their paths."""
    json_path = Path(directory) / CARD_JSON_FILE
    markdown_path = Path(directory) / CARD_MARKDOWN_FILE
    json_path.write_text(json.dumps(card, indent=2, allow_nan=False) + "\n")
    markdown_path.write_text(format_card_markdown(card))
    logger.info("Wrote %s and %s", json_path, markdown_path)
    return json_path, markdown_path
