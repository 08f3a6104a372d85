package state

import (
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Attach and detach take AttachDelay to complete, as in a real cloud, where the interface shows
// "attaching"/"detaching" for a while. A timer per interface completes the transition in a
// transaction of its own; restart reschedules what was pending.

// scheduleTransition arms the completion of attachment's transition. Caller holds s.mu.
func (s *Store) scheduleTransition(eniID, attachmentID string, after time.Duration) {
	s.cancelTransition(eniID)
	s.timers[eniID] = time.AfterFunc(after, func() { s.completeTransition(eniID, attachmentID) })
}

// cancelTransition disarms a pending completion. Caller holds s.mu.
func (s *Store) cancelTransition(eniID string) {
	if t, ok := s.timers[eniID]; ok {
		t.Stop()
		delete(s.timers, eniID)
	}
}

func (s *Store) completeTransition(eniID, attachmentID string) {
	c := Call{Principal: Principal{Admin: true}, Now: time.Now()}
	_, err := write(s, c, "CompleteAttachment", "", nil, func(t *tx) (*struct{}, error) {
		delete(s.timers, eniID)
		e := first[eniRec](t.Txn, tableENIs, indexID, eniID)
		if e == nil || e.AttachmentID != attachmentID {
			return &struct{}{}, nil // superseded
		}
		switch e.AttachStatus {
		case api.AttachmentStatusAttaching:
			n := *e
			n.AttachStatus, n.AttachDue = api.AttachmentStatusAttached, time.Time{}
			return &struct{}{}, t.putENI(&n)
		case api.AttachmentStatusDetaching:
			return &struct{}{}, t.putENI(detached(e))
		}
		return &struct{}{}, nil
	})
	if err != nil {
		s.log.Error("complete attachment transition", "eni", eniID, "attachment", attachmentID, "err", err)
	}
}

// resumeTransitions re-arms transitions that were pending when the state was saved.
func (s *Store) resumeTransitions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, e := range listAll[eniRec](s.db.Txn(false), tableENIs) {
		if e.AttachStatus == api.AttachmentStatusAttaching || e.AttachStatus == api.AttachmentStatusDetaching {
			s.scheduleTransition(e.ID, e.AttachmentID, max(e.AttachDue.Sub(now), 0))
		}
	}
}
