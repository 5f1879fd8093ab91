# Spray decision for one camera frame, as deployed on the fleet in spring.
#
# input.event  the validated model output: {"type": ..., "confidence": ...}
# input.state  the field state read from the regional hub:
#              {"available": bool, "zone": {"blocked": bool, "sprayed": bool}}
#
# The fallback below is the bug: when the hub does not answer within the 1 s timeout the
# policy falls through to the "scheduled pass" rule, which sprays whatever the camera saw.
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

# Fallback: the field state is unknown, so follow the spray schedule.
decision := "spray" if {
	not input.state.available
}

fired contains "weed_confirmed" if weed_confirmed

fired contains "zone_clear" if zone_clear

fired contains "fallback_scheduled_pass" if not input.state.available
