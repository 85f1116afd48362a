"""What people read: the table's plot (``plots``), renders beside ground truth (``figures``)
and the provenance record of a table (``provenance``)."""
