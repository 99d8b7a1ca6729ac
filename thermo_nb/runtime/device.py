"""Device choice: ``"auto"``, ``"cpu"``, ``"cuda"``; a CUDA request without a GPU is an error."""

from __future__ import annotations

DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """Raised when a requested device cannot be used on this machine."""


def resolve_device(device: "str | None" = "auto"):
    """Turn a device request into a ``torch.device``.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"} or "cuda:N" or torch.device or None
        ``"auto"`` (and ``None``) picks CUDA when a GPU is visible, else the CPU.
        ``"cuda"`` without a GPU raises :class:`DeviceError` instead of silently falling
        back, so a "full" run never runs on the CPU by mistake.

    Returns
    -------
    torch.device
    """
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str):
        raise DeviceError(
            f"device must be one of {list(DEVICE_CHOICES)} (or 'cuda:N'), got {device!r}"
        )
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device={device!r} was requested but no CUDA GPU is visible to torch "
                f"(torch {torch.__version__}, torch.version.cuda={torch.version.cuda}). "
                "Use device='auto' or 'cpu', or install a CUDA build of torch (README, "
                "'Installing torch')."
            )
        return torch.device(device)
    raise DeviceError(
        f"device must be one of {list(DEVICE_CHOICES)} (or 'cuda:N'), got {device!r}"
    )
