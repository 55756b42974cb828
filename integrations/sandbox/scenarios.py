"""Scripted demo conversations: the sandbox's only source of transcripts and analyses.

Everything here is simulated and labelled so; nothing is presented as real AI output.
Each scenario is one call. Speaker 0 is whoever speaks first (the CSR, or the voicemail
greeting), speaker 1 the customer, as Deepgram's diarisation would number them. Timings
come from the text at a natural speaking rate, plus scripted pauses (holds, silences), so
the scripts stay readable and the numbers stay plausible.

The sandbox's CallRail serves each scenario's generated audio (:mod:`.audio`) at
:func:`recording_url`; its Deepgram and Shunya recognise a scenario by that URL
(:func:`scenario_for_url`) or by the audio bytes themselves (:func:`scenario_for_audio`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SIMULATED_NOTE = "Simulated conversation from the Otto sandbox; not a real call."

WORDS_PER_SECOND = 2.6  # a relaxed phone-call pace
TURN_GAP = 0.4  # seconds between one speaker stopping and the other starting


@dataclass(frozen=True)
class Utterance:
    speaker: int  # diarised speaker index, as Deepgram numbers them
    role: str  # "agent" or "customer"
    start: float  # seconds
    end: float
    text: str


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    answered: bool
    direction: str  # "inbound" or "outbound"
    customer_name: str
    customer_phone: str
    utterances: tuple[Utterance, ...] = field(default_factory=tuple)
    voicemail: bool = False
    customer_city: str = ""
    customer_state: str = ""
    source: str = "Google Ads"

    @property
    def duration(self) -> float:
        return self.utterances[-1].end if self.utterances else 0.0

    @property
    def transcript(self) -> str:
        return "\n".join(f"{u.role}: {u.text}" for u in self.utterances)


def _script(*turns: str | float, first: str = "agent", start: float = 0.6) -> tuple[Utterance, ...]:
    """Utterances from alternating lines; a number between lines is a pause in seconds.

    Lines alternate between ``first`` (speaker 0) and the other role (speaker 1). A line
    starting with ``"= "`` is spoken by the same speaker as the previous line.
    """
    roles = (first, "customer" if first == "agent" else "agent")
    utterances: list[Utterance] = []
    clock, speaker, pause = start, 1, 0.0
    for turn in turns:
        if isinstance(turn, float | int):
            pause += float(turn)
            continue
        text = turn
        if text.startswith("= "):
            text = text[2:]
        else:
            speaker = 1 - speaker
        begin = clock + pause
        end = begin + max(1.0, len(text.split()) / WORDS_PER_SECOND)
        utterances.append(Utterance(speaker, roles[speaker], round(begin, 2), round(end, 2), text))
        clock, pause = end + TURN_GAP, 0.0
    return tuple(utterances)


_BOOKED = Scenario(
    key="booked",
    title="Booked HVAC repair with an address and a time",
    answered=True,
    direction="inbound",
    customer_name="Dana Whitaker",
    customer_phone="+16175550142",
    customer_city="Somerville",
    customer_state="MA",
    utterances=_script(
        "Thanks for calling Acme Heating and Air, this is Maria. How can I help you today?",
        "Hi Maria, my AC stopped blowing cold air last night and the house is at eighty-four"
        " degrees.",
        "Oh no, I'm sorry to hear that. Is the outdoor unit running at all?",
        "The fan spins but it just blows warm air. It's a Carrier unit, about nine years old.",
        "Okay, that sounds like it could be a capacitor or low refrigerant. Our diagnostic"
        " visit is eighty-nine dollars, and that goes toward the repair if you go ahead.",
        "That's fine. How soon can someone come out?",
        "I have a technician available tomorrow at 9 am. What's the service address?",
        "It's 1420 Maple Street in Somerville.",
        "And can I get your name and the best number to reach you?",
        "Dana Whitaker, and this number is fine, six one seven five five five zero one four two.",
        "Perfect. You're all set for tomorrow at 9 am at 1420 Maple Street. The technician"
        " will text you when he's on the way.",
        "Great, thank you so much.",
    ),
)

_PRICE_OBJECTION = Scenario(
    key="price_objection",
    title="Qualified but not booked: price objection",
    answered=True,
    direction="inbound",
    customer_name="Marcus Bell",
    customer_phone="+16175550187",
    customer_city="Quincy",
    customer_state="MA",
    utterances=_script(
        "Acme Heating and Air, this is Kevin speaking.",
        "Hi, I'm getting quotes on replacing my furnace. It's about twenty years old and"
        " making a rattling noise.",
        "Sure, I can help with that. Is it gas or oil, and roughly how big is the house?",
        "Gas, and the house is about two thousand square feet.",
        "For a high-efficiency gas furnace at that size you're typically looking at six to"
        " eight thousand dollars installed, depending on the ductwork.",
        "Wow, that's a lot more expensive than I expected. The other company said five.",
        "I understand. We do offer financing, and our install includes a ten-year labor"
        " warranty. Would you like a free in-home estimate to get an exact number?",
        "I need to think about it and talk it over first. Can you send me a written quote?",
        "Of course. I'll email you our pricing sheet and give you a call back on Thursday.",
        "Okay, thanks.",
    ),
)

_NOT_OFFERED = Scenario(
    key="not_offered",
    title="Service not offered: pool heater",
    answered=True,
    direction="inbound",
    customer_name="Priya Raman",
    customer_phone="+17815550119",
    customer_city="Newton",
    customer_state="MA",
    utterances=_script(
        "Thank you for calling Acme Heating and Air, this is Maria.",
        "Hi, my pool heater won't ignite. Do you guys repair pool heaters?",
        "I'm sorry, we don't service pool heaters. We only handle home heating and cooling"
        " systems.",
        "Oh, okay. Do you know anyone who does?",
        "A pool supply store can usually recommend a technician. Sorry we couldn't help today.",
        "No problem, thanks anyway.",
    ),
)

_VOICEMAIL = Scenario(
    key="voicemail",
    title="Missed call: the customer left a voicemail",
    answered=False,
    voicemail=True,
    direction="inbound",
    customer_name="Tom Okafor",
    customer_phone="+16175550163",
    customer_city="Cambridge",
    customer_state="MA",
    utterances=_script(
        "You've reached Acme Heating and Air. We're helping other customers right now."
        " Please leave your name, number and a short message after the tone.",
        1.5,
        "Hi, this is Tom Okafor. My furnace is making a loud banging noise when it starts up."
        " Please call me back at six one seven five five five zero one six three. Thanks.",
    ),
)

_SPAM = Scenario(
    key="spam",
    title="Spam: a Google business listing robocall",
    answered=True,
    direction="inbound",
    customer_name="UNKNOWN CALLER",
    customer_phone="+18885550100",
    utterances=_script(
        "Acme Heating and Air, how can I help you?",
        "Hello, this is an important message about your Google business listing. Your"
        " listing is at risk of being removed from search. Press one to speak with a"
        " specialist.",
        "We're not interested, please remove us from your list.",
        "= Goodbye.",
    ),
)

_ANGRY = Scenario(
    key="angry",
    title="Angry customer with several objections",
    answered=True,
    direction="inbound",
    customer_name="Linda Castellano",
    customer_phone="+17815550128",
    customer_city="Medford",
    customer_state="MA",
    utterances=_script(
        "Acme Heating and Air, this is Kevin.",
        "Yes, I had one of your guys out here last week and my heat is out again. This is"
        " ridiculous.",
        "I'm really sorry about that. Can I get your name so I can pull up the visit?",
        "Linda Castellano. And I already paid three hundred dollars for that visit. That's"
        " way too much for a repair that didn't last.",
        "I see the visit here. The technician replaced the igniter. We can send someone back"
        " to look at it.",
        "Last time he showed up two hours late. Honestly this is unacceptable and I'm very"
        " frustrated.",
        "I completely understand. A return visit for the same issue is covered, so there"
        " would be no charge for the diagnosis.",
        "I'm not sure. I need to talk to my husband first, and I'm calling another company"
        " for a second opinion.",
        "That's fair. If you'd like us to come back, just call and we'll prioritise it.",
        "We'll see.",
    ),
)

_CARD_NUMBER = Scenario(
    key="card_number",
    title="Customer reads out a card number (for redaction tests)",
    answered=True,
    direction="inbound",
    customer_name="Greg Novak",
    customer_phone="+16175550176",
    customer_city="Brookline",
    customer_state="MA",
    utterances=_script(
        "Acme Heating and Air, this is Maria.",
        "Hi, I'd like to book the fall furnace tune-up and pay the deposit now.",
        "Happy to help. The tune-up is one hundred twenty-nine dollars. What's the address?",
        "It's 88 Beacon Street in Brookline.",
        "I can do Friday at 2 pm. Does that work?",
        "That works. My card number is 4111 1111 1111 1111, expiration twelve twenty-eight.",
        "Please don't read card details over the phone. I'll text you a secure payment link"
        " instead. You're booked for Friday at 2 pm at 88 Beacon Street.",
        "Oh, sorry. Thanks, I'll use the link.",
    ),
)

_LONG_CALL = Scenario(
    key="long_call",
    title="Long consultation: full system replacement, booked estimate",
    answered=True,
    direction="inbound",
    customer_name="Elena Martins",
    customer_phone="+15085550134",
    customer_city="Framingham",
    customer_state="MA",
    utterances=_script(
        "Thanks for calling Acme Heating and Air, this is Maria. How can I help?",
        "Hi Maria. We just bought an older house and I want to understand our options for"
        " heating and cooling before winter. It has an oil boiler and window units.",
        "Congratulations on the house! I can walk you through it. How old is the boiler?",
        "The inspection report says it's from 1998, and the inspector said it's near the end"
        " of its life.",
        "That's about right for an oil boiler. Most people in your situation look at either a"
        " new gas boiler, if you have gas on the street, or a heat pump system.",
        "We do have gas on the street. What's the difference in running costs?",
        "Heat pumps are usually cheaper to run now, especially with the state rebates, but"
        " the upfront cost is higher. Let me pull up the current rebate numbers, one moment.",
        95.0,
        "= Thanks for holding. Mass Save offers up to ten thousand dollars for a whole-home"
        " heat pump, and there's a federal tax credit on top of that.",
        "That's a lot more than I thought. How many indoor units would we need?",
        "It depends on the layout. For a two-story colonial we usually see four to six"
        " ductless heads, or a ducted system if there's attic space.",
        "There's a big attic. Would ducts up there work for the second floor?",
        "Often, yes. The first floor could use the existing radiator space or a couple of"
        " ductless heads. Our comfort advisor would measure everything.",
        "And what would happen to the oil tank?",
        "We can remove and dispose of the tank as part of the project. It's usually around"
        " fifteen hundred dollars.",
        "Okay. My main worry is the really cold nights. Does a heat pump keep up?",
        "The cold-climate models we install are rated down to minus thirteen degrees, and we"
        " size them for the coldest design day. Some customers keep the boiler as a backup.",
        "That's reassuring. Roughly what would the whole thing cost before rebates?",
        "For a house that size, somewhere between twenty-two and thirty thousand before"
        " rebates. The advisor will give you an exact written quote.",
        "Let me just check my calendar.",
        40.0,
        "= Okay, sorry about that. When could the advisor come out?",
        "I have Tuesday at 10 am or Wednesday at 3 pm.",
        "Tuesday at 10 am works for me.",
        "Great. Can I confirm the address?",
        "It's 57 Elm Drive in Framingham.",
        "And your name?",
        "Elena Martins.",
        "You're all set, Elena. Our comfort advisor will see you Tuesday at 10 am at 57 Elm"
        " Drive. The visit takes about ninety minutes and it's free.",
        "Perfect, thank you so much for all the information.",
        "My pleasure. Enjoy the new house!",
    ),
)

SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        _BOOKED,
        _PRICE_OBJECTION,
        _NOT_OFFERED,
        _VOICEMAIL,
        _SPAM,
        _ANGRY,
        _CARD_NUMBER,
        _LONG_CALL,
    )
}

# Recording paths on the sandbox: the final file, and CallRail's redirecting link to it.
_RECORDING_PATH = re.compile(r"^/media/recordings/(?P<key>[a-z0-9_]+)\.wav$")
_REDIRECT_PATH = re.compile(r"^/media/callrail/[^/]+/(?P<key>[a-z0-9_]+)/redirect$")


def recording_url(scenario: Scenario, base_url: str) -> str:
    """Where the sandbox serves ``scenario``'s audio (``base_url`` is the sandbox's URL)."""
    return f"{base_url.rstrip('/')}/media/recordings/{scenario.key}.wav"


def scenario_for_audio(data: bytes) -> Scenario | None:
    """The scenario whose generated audio file is ``data`` (None for unknown audio)."""
    from integrations.sandbox.audio import scenario_key

    key = scenario_key(data)
    return SCENARIOS.get(key) if key else None


def scenario_for_url(url: str) -> Scenario | None:
    """The scenario behind a sandbox recording URL (None when the URL is not one).

    Any host is accepted: the app may see the sandbox under another name than its own.
    """
    path = urlsplit(url).path
    match = _RECORDING_PATH.match(path) or _REDIRECT_PATH.match(path)
    return SCENARIOS.get(match["key"]) if match else None


def audio_for(scenario: Scenario) -> bytes:
    """The scenario's small generated WAV file (see :mod:`.audio`)."""
    from integrations.sandbox.audio import render

    return render(scenario.key, [u.speaker for u in scenario.utterances])
