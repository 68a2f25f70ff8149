package workers

// registerChat registers the background jobs of the chat product.
func (r *Runner) registerChat() {}
