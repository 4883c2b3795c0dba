"""The audit trail's offline tools: `ats-audit verify`, the auditor's verifier of exports and signed digests."""
