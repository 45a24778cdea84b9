-- An ATM's dispenser (issue 25): 'screen' (no hardware: the screen's "I have taken my cash" reports a full dispense,
-- its timeout a retract) or 'device' (a real dispenser's agent reports each withdrawal's cash at /atm/device/...).
ALTER TABLE atms ADD COLUMN dispenser TEXT NOT NULL DEFAULT 'screen' CHECK (dispenser IN ('screen', 'device'));
