"""The desk's FIX data dictionaries (QuickFIX XML format); a package so the XML ships in wheels."""
