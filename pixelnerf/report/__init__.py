"""What people read: the table's plot (``plots``), renders beside ground truth (``figures``),
the provenance record of a table (``provenance``) and config/README.md's key tables
(``config_tables``)."""
