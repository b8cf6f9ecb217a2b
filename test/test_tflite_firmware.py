"""Firmware export: the C source and header compile and hold the model bytes."""
import shutil
import subprocess

import pytest

from deployment import testing
from deployment.conversion import convert_to_tflite
from deployment.firmware import write_firmware

CHECK_PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include "{name}.h"

int main(void) {{
  FILE *file = fopen("{model_path}", "rb");
  if (file == NULL) return 10;
  unsigned int matching = 0;
  int byte;
  while ((byte = fgetc(file)) != EOF && matching < {name}_tflite_len) {{
    if ((unsigned char)byte != {name}_tflite[matching]) return 11;
    matching++;
  }}
  fclose(file);
  printf("%u %lu %d\n", matching, (unsigned long)((uintptr_t){name}_tflite % 16),
         {upper}_ARENA_SIZE);
  return 0;
}}
"""


@pytest.fixture(scope="module")
def branchy():
    mnist = testing.load_mnist_subset()
    return convert_to_tflite(testing.branchy_model(), mnist["x_train"][:64])


@pytest.mark.parametrize("compiler", ["gcc", "g++"])
def test_firmware_compiles_with_model(branchy, tmp_path, compiler):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    files = write_firmware(branchy, tmp_path, name="branchy_model", arena_bytes=12345)
    model_path = tmp_path / "model.tflite"
    model_path.write_bytes(branchy)
    check = tmp_path / "check.c"
    check.write_text(CHECK_PROGRAM.format(name="branchy_model", upper="BRANCHY_MODEL",
                                          model_path=model_path))

    language = ["-x", "c++", "-std=c++11"] if compiler == "g++" else ["-std=c11"]
    binary = tmp_path / f"check_{compiler}"
    compiled = subprocess.run(
        [compiler, *language, "-Wall", "-Werror", "-I", str(tmp_path), str(check),
         str(files.source), "-o", str(binary)], capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr

    run = subprocess.run([str(binary)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    length, alignment, arena = run.stdout.split()
    assert int(length) == len(branchy)
    assert int(alignment) == 0
    assert int(arena) == 12345


def test_firmware_measures_arena(branchy, tmp_path):
    from deployment import tflm

    files = write_firmware(branchy, tmp_path, name="measured")
    header = files.header.read_text()
    expected = tflm.measure_arena(branchy).minimal_arena_bytes

    assert f"#define MEASURED_ARENA_SIZE {expected}\n" in header
    assert "extern const unsigned char measured_tflite[];" in header


def test_firmware_invalid_name(branchy, tmp_path):
    with pytest.raises(ValueError, match="C identifier"):
        write_firmware(branchy, tmp_path, name="2-model", arena_bytes=100)
