"""Whether a forward is running eagerly or being captured into a graph."""
import torch
import torch.fx


def is_capturing_graph(x=None) -> bool:
    """True under torch.jit.trace / script, torch.export (and the ONNX exporter built on it) and
    torch.fx symbolic tracing (`x` a Proxy): eager-only shortcuts must not be recorded there.
    torch.compile is not capture in this sense: dynamo guards its branches and recompiles."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_exporting()
            or isinstance(x, torch.fx.Proxy))


def checkpoints(with_cp: bool, *tensors) -> bool:
    """Whether a `with_cp` block recomputes its forward in backward: only when autograd records
    through its input (training), never while a graph is captured -- checkpointing saves
    training memory, an exported inference graph has none to save, and the `requires_grad` test
    would be control flow FX cannot record."""
    return (with_cp and not is_capturing_graph(tensors[0])
            and any(t.requires_grad for t in tensors))
