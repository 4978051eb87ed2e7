//! One recording's life under Call Automation: active, inactive while paused, active again, then stopped. The
//! transitions are methods of the state that say what changed, so that the code serving requests only
//! orchestrates and the rules are tested here alone.

use crate::recording::RecordingState;

/// Where a recording is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Recording.
    Active,
    /// Paused (or started with `pauseOnStart`): nothing is recorded until it resumes.
    Inactive,
    /// Stopped: its chunks are in the storage and no operation applies any more.
    Stopped,
}

/// What an operation did to a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The recording moved to this phase: a `RecordingStateChanged` callback announces it (`Stopped` announces
    /// `inactive`).
    To(Phase),
    /// The recording already was where the operation leads: accepted, nothing announced.
    Unchanged,
}

/// An operation that the recording's phase does not allow (409).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conflict {
    /// The phase that refused it.
    pub(crate) phase: Phase,
}

impl Conflict {
    /// The message of the 409.
    pub(crate) fn message(self, operation: &str) -> String {
        match self.phase {
            Phase::Stopped => format!("cannot {operation} a recording that was stopped"),
            Phase::Active => format!("cannot {operation} an active recording"),
            Phase::Inactive => format!("cannot {operation} an inactive recording"),
        }
    }
}

impl Phase {
    /// The phase a recording starts in.
    pub(crate) fn started(pause_on_start: bool) -> Self {
        if pause_on_start {
            Phase::Inactive
        } else {
            Phase::Active
        }
    }

    /// Pauses an active recording; pausing a paused one changes nothing.
    pub(crate) fn pause(&mut self) -> Result<Change, Conflict> {
        self.move_to(Phase::Inactive)
    }

    /// Resumes a paused recording; resuming an active one changes nothing.
    pub(crate) fn resume(&mut self) -> Result<Change, Conflict> {
        self.move_to(Phase::Active)
    }

    /// Stops a recording, active or paused; a stopped recording cannot stop again.
    pub(crate) fn stop(&mut self) -> Result<Change, Conflict> {
        if *self == Phase::Stopped {
            return Err(Conflict { phase: *self });
        }
        *self = Phase::Stopped;
        Ok(Change::To(Phase::Stopped))
    }

    /// Active or inactive, as the answers and the callbacks name the state; a stopped recording is inactive.
    pub(crate) fn state(self) -> RecordingState {
        match self {
            Phase::Active => RecordingState::Active,
            Phase::Inactive | Phase::Stopped => RecordingState::Inactive,
        }
    }

    fn move_to(&mut self, target: Phase) -> Result<Change, Conflict> {
        match *self {
            Phase::Stopped => Err(Conflict { phase: Phase::Stopped }),
            current if current == target => Ok(Change::Unchanged),
            _ => {
                *self = target;
                Ok(Change::To(target))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_the_recording_rules() {
        type Op = fn(&mut Phase) -> Result<Change, Conflict>;
        let (pause, resume, stop): (Op, Op, Op) = (Phase::pause, Phase::resume, Phase::stop);
        let table = [
            (Phase::Active, pause, Ok(Change::To(Phase::Inactive)), Phase::Inactive),
            (Phase::Inactive, pause, Ok(Change::Unchanged), Phase::Inactive),
            (Phase::Inactive, resume, Ok(Change::To(Phase::Active)), Phase::Active),
            (Phase::Active, resume, Ok(Change::Unchanged), Phase::Active),
            (Phase::Active, stop, Ok(Change::To(Phase::Stopped)), Phase::Stopped),
            (Phase::Inactive, stop, Ok(Change::To(Phase::Stopped)), Phase::Stopped),
            (Phase::Stopped, pause, Err(Conflict { phase: Phase::Stopped }), Phase::Stopped),
            (Phase::Stopped, resume, Err(Conflict { phase: Phase::Stopped }), Phase::Stopped),
            (Phase::Stopped, stop, Err(Conflict { phase: Phase::Stopped }), Phase::Stopped),
        ];
        for (index, (from, operation, outcome, after)) in table.into_iter().enumerate() {
            let mut phase = from;
            assert_eq!(operation(&mut phase), outcome, "row {index}");
            assert_eq!(phase, after, "row {index}");
        }
    }

    #[test]
    fn a_recording_paused_on_start_begins_inactive() {
        assert_eq!(Phase::started(true), Phase::Inactive);
        assert_eq!(Phase::started(false), Phase::Active);
        assert_eq!(Phase::Stopped.state(), RecordingState::Inactive);
    }

    #[test]
    fn conflicts_name_the_operation_and_the_phase() {
        assert_eq!(Conflict { phase: Phase::Stopped }.message("pause"), "cannot pause a recording that was stopped");
    }
}
