"""Ways into the guest behind one interface: run a command, fetch a file."""
from harness.channel.base import Channel, ChannelClosed, CommandResult, CommandTimeout, GuestSilent

__all__ = ["Channel", "ChannelClosed", "CommandResult", "CommandTimeout", "GuestSilent"]
