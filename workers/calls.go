package workers

// registerCalls registers the background jobs of the calls product.
func (r *Runner) registerCalls() {}
