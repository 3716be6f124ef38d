"""Operations: the status view and metrics of a running engine, and the center's reports."""
