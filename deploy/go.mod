module github.com/driftmon/driftmon/deploy

go 1.26.8

// The product's own packages (its config validation) come from this checkout.
replace github.com/driftmon/driftmon => ../
