//go:build long

package scraper_test

// stormFaults is how many 429 answers the 429 storm test meets in `make
// test-long`: the full storm of over 200 receives.
const stormFaults = 210
