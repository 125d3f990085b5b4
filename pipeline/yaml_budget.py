"""YAML from users (profiles) parsed within a budget: the file is read up to a size cap, and the document's
node graph is measured with every alias counted as often as it is used before anything is constructed, so a
600-byte alias bomb is refused in microseconds instead of expanding to gigabytes later (in validation, a
deep merge or an error message). Malformed, too deep or unconstructible YAML is one line."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.errors import PipelineError
from pipeline.input_limits import read_text

MAX_YAML_BYTES = 256 * 1024  # a profile is about 1 KiB
MAX_YAML_NODES = 20_000  # scalars + collections after alias expansion; a profile has about 100


def expanded_nodes(root: yaml.Node, limit: int) -> int:
    """Node count of the document with aliases expanded (shared nodes counted once per use); stops counting
    once past `limit`. Linear in the distinct nodes: each one's expanded size is computed once."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 1  # a cycle (an alias to an enclosing node) counts once instead of forever
            children = [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) \
                else node.value if isinstance(node, yaml.SequenceNode) else []
            total = 1
            for child in children:
                total += size(child)
                if total > limit:
                    break
            sizes[id(node)] = total
        return sizes[id(node)]

    return size(root)


def _where(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def load_yaml(path: Path, what: str):
    """The document in `path`, or one PipelineError line naming the file and what is wrong."""
    data = read_text(path, MAX_YAML_BYTES, what)
    loader = yaml.SafeLoader(data)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        nodes = expanded_nodes(root, MAX_YAML_NODES)
        if nodes > MAX_YAML_NODES:
            raise PipelineError(f"{path}: YAML expands to more than {MAX_YAML_NODES} nodes (aliases counted per use); "
                                f"a {what} has about a hundred: refusing an alias bomb")
        return loader.construct_document(root)
    except yaml.YAMLError as error:
        problem = str(getattr(error, "problem", None) or error)[:200]
        raise PipelineError(f"{path}: malformed YAML{_where(error)}: {problem}") from None
    except RecursionError:
        raise PipelineError(f"{path}: YAML nested too deeply for a {what}") from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        raise PipelineError(f"{path}: a YAML value cannot be read: {str(error)[:120]}") from None
    finally:
        loader.dispose()
