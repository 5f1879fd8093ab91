package orchard.treat

import rego.v1

default decision := "skip"

decision := "treat" if input.seen.pest

fired contains "pest_seen" if input.seen.pest
