"""Intervene: IFT groups that differ in one factor only, and their rendered SFT examples."""
