"""Subcommands of `iftscope`, one module each: the parser and a thin call into the library."""
