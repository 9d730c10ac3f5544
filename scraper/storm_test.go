//go:build !long

package scraper_test

// stormFaults is how many 429 answers the 429 storm test meets in `make
// test`: still more receives than the old maxReceiveCount of 100 (and ten
// times what the 15-minute cap needs), at half the page loads of the
// full storm that `make test-long` (-tags long) runs.
const stormFaults = 115
