package scheduler

// StopBeating stops s's ticks and heartbeats while its River client runs
// on: to the other schedulers, s is a process that died mid-try.
func StopBeating(s *Scheduler) {
	s.stopLoop()
	<-s.loopDone
}
