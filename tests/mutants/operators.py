"""Classic multiprocessing mistakes, made one at a time in a reference solution.

Each operator walks the solution's syntax tree and yields one ``Mutant`` per
place it applies to: the same source with one text range replaced. The
operators are the mistakes students make with this API (a start, join, lock,
task_done or sentinel removed; run() for start(); a threading primitive for a
multiprocessing one; one worker; the order reversed; a timeout multiplied; a
join moved right after its start; a keyword argument forgotten; a sentinel
test made falsy; a boundary or constant off by one), applied wherever they
fit, so that no mutant is chosen with the hidden tests in view.

A mutant's id names the operator, the function and the code it changed, not a
line number, so that it survives edits elsewhere in the solution: the list of
equivalent mutants (``tests/mutants/<exercise>.toml``) is keyed by it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    id: str  # "operator function: code", unique within one solution
    operator: str
    function: str
    description: str
    source: str  # the whole mutated module


@dataclass(frozen=True)
class Edit:
    """Replace the text between two (line, column) positions, lines counted from 1."""

    start: tuple[int, int]
    end: tuple[int, int]
    text: str


def apply_edits(source: str, edits: list[Edit]) -> str:
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def at(position: tuple[int, int]) -> int:
        line, column = position
        return (
            offsets[line - 1] + len(lines[line - 1].encode()[:column].decode()) if line <= len(lines) else offsets[-1]
        )

    result = source
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        result = result[: at(edit.start)] + edit.text + result[at(edit.end) :]
    return result


def _span(node: ast.AST) -> tuple[tuple[int, int], tuple[int, int]]:
    return (node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


def _replace(node: ast.AST, text: str) -> Edit:
    start, end = _span(node)
    return Edit(start, end, text)


def _segment(source: str, node: ast.AST) -> str:
    return " ".join((ast.get_source_segment(source, node) or "").split())


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    """Every node inside a top-level function or class, with the qualified name of its function."""
    for top in tree.body:
        if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(top):
                yield top.name, node
        elif isinstance(top, ast.ClassDef):
            for member in top.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    for node in ast.walk(member):
                        yield f"{top.name}.{member.name}", node


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _method_name(call: ast.AST) -> str | None:
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
        return call.func.id
    return None


Candidate = tuple[str, ast.AST, list[Edit], str]  # function, node, edits, description
Operator = Callable[[str, ast.Module], Iterator[Candidate]]


def drop_call(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """A call made for its effect, left out: start(), join(), put(None), task_done(), close(), set(), notify..."""
    for function, node in _functions(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and not _is_docstring(node):
            yield function, node, [_replace(node, "pass")], f"left out {_segment(source, node)}"


def run_for_start(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """run() called where start() belongs: the target runs in the caller's own process."""
    for function, node in _functions(tree):
        is_start = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "start"
        if is_start and not node.args and not node.keywords:
            value = ast.get_source_segment(source, node.func.value)
            yield function, node, [_replace(node, f"{value}.run()")], f"{value}.run() for {value}.start()"


def join_after_start(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """Each process joined right after it starts: they run one after another."""
    for function, node in _functions(tree):
        if isinstance(node, ast.Expr) and _method_name(node.value) == "start" and not node.value.args:
            target = ast.get_source_segment(source, node.value.func.value)
            indent = " " * node.col_offset
            text = f"{ast.get_source_segment(source, node)}\n{indent}{target}.join()"
            yield function, node, [_replace(node, text)], f"{target}.join() right after {target}.start()"


# multiprocessing name -> its thread-world look-alike (what the mutant imports)
THREAD_TWINS = {
    "Process": "threading.Thread",
    "Lock": "threading.Lock",
    "RLock": "threading.RLock",
    "Semaphore": "threading.Semaphore",
    "BoundedSemaphore": "threading.BoundedSemaphore",
    "Event": "threading.Event",
    "Condition": "threading.Condition",
    "Barrier": "threading.Barrier",
    "Queue": "queue.Queue",
    "JoinableQueue": "queue.Queue",
    "SimpleQueue": "queue.SimpleQueue",
    "Pool": "multiprocessing.pool.ThreadPool",
    "ProcessPoolExecutor": "concurrent.futures.ThreadPoolExecutor",
}
TWIN_IMPORTS = "import concurrent.futures, multiprocessing.pool, queue, threading  # mutant\n"


def thread_for_process(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """A threading (or queue) primitive where a multiprocessing one belongs."""
    for function, node in _functions(tree):
        if isinstance(node, ast.Call):
            callee = node.func
            name = (
                callee.attr if isinstance(callee, ast.Attribute) else callee.id if isinstance(callee, ast.Name) else ""
            )
            if name in THREAD_TWINS:
                old = ast.get_source_segment(source, callee)
                yield function, callee, [_replace(callee, THREAD_TWINS[name])], f"{THREAD_TWINS[name]} for {old}"


WORKER_KEYWORDS = ("processes", "max_workers")


def one_worker(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """A pool or executor of one worker, whatever it was asked for."""
    for function, node in _functions(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg in WORKER_KEYWORDS:
                yield function, keyword.value, [_replace(keyword.value, "1")], f"{keyword.arg}=1"
        name = _method_name(node)
        if name in ("Pool", "ProcessPoolExecutor", "ThreadPoolExecutor") and node.args:
            yield function, node.args[0], [_replace(node.args[0], "1")], f"{name}(1, ...)"


def reverse_result(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """A list returned in the reverse order."""
    for function, node in _functions(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            is_list = isinstance(value, (ast.List, ast.ListComp)) or _method_name(value) in (
                "list",
                "sorted",
                "map",
                "starmap",
                "get",
            )
            if is_list:
                text = ast.get_source_segment(source, value)
                yield function, value, [_replace(value, f"list(reversed(list({text})))")], f"reversed {text}"


def multiply_timeout(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """A timeout ten times as long as asked."""
    for function, node in _functions(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "timeout":
                    text = ast.get_source_segment(source, keyword.value)
                    yield function, keyword.value, [_replace(keyword.value, f"({text}) * 10")], f"timeout={text} * 10"
            for argument in node.args:
                if isinstance(argument, ast.Name) and "timeout" in argument.id:
                    yield function, argument, [_replace(argument, f"({argument.id} * 10)")], f"{argument.id} * 10"


def drop_keyword(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """A keyword argument forgotten: name=, kwargs=, daemon=, chunksize=, callback=, initializer=..."""
    for function, node in _functions(tree):
        if not isinstance(node, ast.Call):
            continue
        for index, keyword in enumerate(node.keywords):
            if keyword.arg is None:
                continue
            kept = [ast.get_source_segment(source, a) for a in node.args] + [
                ast.get_source_segment(source, k) for i, k in enumerate(node.keywords) if i != index
            ]
            callee = ast.get_source_segment(source, node.func)
            text = f"{callee}({', '.join(kept)})"
            yield function, node, [_replace(node, text)], f"left out {keyword.arg}= in {callee}(...)"


def unwrap_with(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """A with block's context left out: a lock never taken, a pool or manager never closed."""
    for function, node in _functions(tree):
        if not isinstance(node, ast.With) or not node.body:
            continue
        indent = " " * node.col_offset
        first = node.body[0]
        header_end = (first.lineno, 0) if first.lineno > node.lineno else None
        if header_end is None:
            continue  # a one-line with statement: leave it
        assignments = []
        for item in node.items:
            expression = ast.get_source_segment(source, item.context_expr)
            if item.optional_vars is not None:
                assignments.append(f"{indent}{ast.get_source_segment(source, item.optional_vars)} = {expression}\n")
        text = "".join(assignments) + f"{indent}if True:\n"
        edit = Edit((node.lineno, 0), header_end, text)
        header = " ".join(ast.get_source_segment(source, item.context_expr) for item in node.items)
        yield function, node, [edit], f"no with around the block: {header} never entered nor exited"


def falsy_sentinel(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """`x is None` written as `not x`: every falsy item counts as the sentinel."""
    for function, node in _functions(tree):
        compares = isinstance(node, ast.Compare) and len(node.ops) == 1
        if compares and isinstance(node.comparators[0], ast.Constant) and node.comparators[0].value is None:
            subject = ast.get_source_segment(source, node.left)
            if isinstance(node.ops[0], ast.Is):
                yield function, node, [_replace(node, f"not {subject}")], f"not {subject} for {subject} is None"
            elif isinstance(node.ops[0], ast.IsNot):
                yield function, node, [_replace(node, f"bool({subject})")], f"{subject} for {subject} is not None"


BOUNDARY = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">"}


def shift_boundary(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """A comparison off by one: < for <=, > for >= and back."""
    for function, node in _functions(tree):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in BOUNDARY:
            left = ast.get_source_segment(source, node.left)
            right = ast.get_source_segment(source, node.comparators[0])
            text = f"{left} {BOUNDARY[type(node.ops[0])]} {right}"
            yield function, node, [_replace(node, text)], text


def shift_constant(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """A whole-number constant off by one."""
    for function, node in _functions(tree):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            yield function, node, [_replace(node, str(node.value + 1))], f"{node.value + 1} for {node.value}"


def flip_bool(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """True for False and back (daemon=True, duplex=False, block=...)."""
    for function, node in _functions(tree):
        if isinstance(node, ast.Constant) and type(node.value) is bool:
            yield function, node, [_replace(node, str(not node.value))], f"{not node.value} for {node.value}"


def drop_raise(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """An exception swallowed: a raise statement left out."""
    for function, node in _functions(tree):
        if isinstance(node, ast.Raise):
            yield function, node, [_replace(node, "pass")], f"left out {_segment(source, node)}"


# A method where its sibling belongs: same arguments, another contract.
SIBLINGS = {
    "imap": "imap_unordered",
    "imap_unordered": "imap",
    "map": "imap",
    "starmap": "map",
    "apply_async": "apply",
    "map_async": "map",
    "terminate": "kill",
    "kill": "terminate",
    "notify_all": "notify",
    "set": "clear",
    "as_completed": "list",
    "FIRST_EXCEPTION": "ALL_COMPLETED",
    "FIRST_COMPLETED": "ALL_COMPLETED",
    "parent_process": "current_process",
    "getpid": "getppid",
}


def swap_api(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """An API sibling for the one the contract needs: imap for imap_unordered, terminate for kill, ..."""
    for function, node in _functions(tree):
        if isinstance(node, ast.Attribute) and node.attr in SIBLINGS:
            value = ast.get_source_segment(source, node.value)
            new = f"{value}.{SIBLINGS[node.attr]}"
            yield function, node, [_replace(node, new)], f"{new} for {value}.{node.attr}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SIBLINGS:
            new = SIBLINGS[node.func.id]
            yield function, node.func, [_replace(node.func, new)], f"{new}(...) for {node.func.id}(...)"


WAITS = ("join", "poll", "get", "wait", "acquire", "result", "exception")


def drop_timeout(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """A wait that was given a limit, made without one: join(), get(), poll(), wait(), result()."""
    for function, node in _functions(tree):
        is_wait = isinstance(node, ast.Call) and _method_name(node) in WAITS and isinstance(node.func, ast.Attribute)
        if is_wait and (node.args or node.keywords):
            value = ast.get_source_segment(source, node.func.value)
            new = f"{value}.{node.func.attr}()"
            yield function, node, [_replace(node, new)], f"{new} for {_segment(source, node)}"


# A ctypes type code where a narrower one does not hold the values: float, 32- and 64-bit int.
NARROWER = {"d": "f", "i": "h", "l": "h", "q": "h", "I": "H", "L": "H"}


def narrow_typecode(source: str, tree: ast.Module) -> Iterator[Candidate]:
    """A shared Value or Array declared with a type too small for what it holds."""
    for function, node in _functions(tree):
        shared = isinstance(node, ast.Call) and _method_name(node) in ("Value", "Array", "RawValue", "RawArray")
        if shared and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in NARROWER:
            new = repr(NARROWER[node.args[0].value])
            yield (
                function,
                node.args[0],
                [_replace(node.args[0], new)],
                f"type code {new} for {node.args[0].value!r}",
            )


OPERATORS: dict[str, Operator] = {
    "drop-call": drop_call,
    "run-for-start": run_for_start,
    "join-after-start": join_after_start,
    "thread-for-process": thread_for_process,
    "one-worker": one_worker,
    "reverse-result": reverse_result,
    "multiply-timeout": multiply_timeout,
    "drop-keyword": drop_keyword,
    "unwrap-with": unwrap_with,
    "falsy-sentinel": falsy_sentinel,
    "shift-boundary": shift_boundary,
    "shift-constant": shift_constant,
    "flip-bool": flip_bool,
    "drop-raise": drop_raise,
    "swap-api": swap_api,
    "drop-timeout": drop_timeout,
    "narrow-typecode": narrow_typecode,
}


def _with_imports(source: str) -> str:
    """Put the imports a threading mutant needs after any __future__ import."""
    lines = source.splitlines(keepends=True)
    last_future = max((i for i, line in enumerate(lines) if line.startswith("from __future__")), default=-1)
    if last_future < 0:
        return TWIN_IMPORTS + source
    return "".join(lines[: last_future + 1]) + TWIN_IMPORTS + "".join(lines[last_future + 1 :])


def mutants(source: str) -> list[Mutant]:
    """Every mutant of one solution, each a valid module, in a stable order with unique ids."""
    tree = ast.parse(source)
    found: list[Mutant] = []
    seen: dict[str, int] = {}
    for name, operator in OPERATORS.items():
        for function, _node, edits, description in operator(source, tree):
            mutated = apply_edits(source, edits)
            if name == "thread-for-process":
                mutated = _with_imports(mutated)
            if mutated == source:
                continue
            try:
                ast.parse(mutated)
            except SyntaxError:  # e.g. a pass that left a block malformed: not a mistake anyone could run
                continue
            base = f"{name} {function}: {' '.join(description.split())}"
            seen[base] = seen.get(base, 0) + 1
            mutant_id = base if seen[base] == 1 else f"{base} #{seen[base]}"
            found.append(Mutant(mutant_id, name, function, description, mutated))
    return found
