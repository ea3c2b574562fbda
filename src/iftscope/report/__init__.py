"""Report: one self-contained HTML file, a Markdown summary, figures."""
