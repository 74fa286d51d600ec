"""What the mode in force (and the attack signatures) make the data plane do beyond the rules.

The control process decides the mode; `[detector.elevated]` and `[detector.under_attack]` say what each
one does: challenge every request without a clearance (`challenge_all`; exempt paths and verified
crawlers still pass), or only clients the shield refused recently (`challenge_suspicious`). Active
signatures block or challenge the requests they match. Checked after the rules allowed a request, and
only while something is active: in normal mode without signatures this costs one attribute check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shieldwall.control.state import ControlState
from shieldwall.detector.events import Mode
from shieldwall.detector.features import features_of
from shieldwall.policy.decision import Action, Decision, RequestView

if TYPE_CHECKING:
    from shieldwall.config.detector_schema import Detector, ModeActions
    from shieldwall.policy.engine import ChallengeGate


class ModeEffects:
    def __init__(self, settings: Detector) -> None:
        self._actions: dict[Mode, ModeActions] = {
            Mode.ELEVATED: settings.elevated,
            Mode.UNDER_ATTACK: settings.under_attack,
        }
        self.state = ControlState()
        self.active = False
        self.challenge_all = self.challenge_suspicious = False
        # Requests each signature matched (totals since the worker started): the control process keeps
        # a signature alive while it still matches.
        self.matched: dict[str, int] = {}
        self._decision = Decision(Action.CHALLENGE, "mode-normal")

    @property
    def level(self) -> int:
        """The threat level for challenge difficulty: 0 normal, 1 elevated, 2 under attack."""
        return self.state.mode.level

    def apply(self, state: ControlState) -> None:
        self.state = state
        actions = self._actions.get(state.mode)
        self.challenge_all = actions is not None and actions.challenge_all
        self.challenge_suspicious = actions is not None and actions.challenge_suspicious
        self.active = self.challenge_all or self.challenge_suspicious or bool(state.signatures)
        self._decision = Decision(Action.CHALLENGE, f"mode-{state.mode.value}")

    def decide(
        self, view: RequestView, gate: ChallengeGate, *, suspicious: bool, now_wall: float
    ) -> Decision | None:
        """A challenge or block for a request the rules allowed, or None to let it go on."""
        if self.state.signatures:
            features = features_of(view)
            for signature in self.state.signatures:
                if signature.expires > now_wall and signature.matches(features):
                    self.matched[signature.id] = self.matched.get(signature.id, 0) + 1
                    if signature.action == "block":
                        return Decision(Action.BLOCK, signature.id)
                    return None if gate.passes(view) else Decision(Action.CHALLENGE, signature.id)
        if (self.challenge_all or (self.challenge_suspicious and suspicious)) and not gate.passes(view):
            return self._decision
        return None
