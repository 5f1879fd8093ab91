# Spray decision for one camera frame — fixed.
#
# Sprays only on a confident weed event in a zone the hub confirms is clear. When the
# field state cannot be read in time the tractor aborts the pass instead of guessing.
package agri.spray

import rego.v1

default decision := "hold"

weed_confirmed if {
	input.event.type == "weed_detected"
	input.event.confidence > 0.8
}

zone_clear if {
	input.state.available
	not input.state.zone.blocked
	not input.state.zone.sprayed
}

decision := "spray" if {
	weed_confirmed
	zone_clear
}

decision := "abort" if not input.state.available

fired contains "weed_confirmed" if weed_confirmed

fired contains "zone_clear" if zone_clear

fired contains "abort_state_unavailable" if not input.state.available
