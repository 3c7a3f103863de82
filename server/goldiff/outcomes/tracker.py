"""The former name of `goldiff.outcomes.suggestions`, kept for code that imports it."""

from goldiff.outcomes.suggestions import ManualClock as ManualClock
from goldiff.outcomes.suggestions import OutcomeTracker as OutcomeTracker
