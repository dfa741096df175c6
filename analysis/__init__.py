"""Root-cause analysis of incidents (Claude, or the offline analyzer). Arrives with the analysis
engine; until then reports show `analysis: null`."""
