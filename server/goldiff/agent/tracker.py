"""The former name of `goldiff.agent.proposals`, kept for code that imports it."""

from goldiff.agent.proposals import ProposalTracker as ProposalTracker
from goldiff.agent.proposals import Scheduler as Scheduler
