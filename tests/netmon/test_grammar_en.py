"""The shipped English intent grammar (library/en/intent.grammar): the December 2026 shapes fire by rule,
and their look-alikes stay below alerting. Examples come from the dev sets, never from the held-out
tests/eval/fresh-2026-12b.jsonl."""

from __future__ import annotations

from pathlib import Path

import pytest

from netmon.scan.library import load_library
from netmon.scan.matching import Matcher

REPO = Path(__file__).resolve().parents[2]
CSE = "child_sexual_exploitation"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.compile(load_library(REPO / "library"))


def assert_rule_fires(matcher: Matcher, text: str, rule: str, category: str, severity: int) -> None:
    hits = [h for h in matcher.scan(text) if h.phrase == f"rule {rule}"]
    assert hits, f"{rule} did not fire on {text!r}"
    assert hits[0].category == category
    assert hits[0].severity >= severity


def assert_below_alerting(matcher: Matcher, text: str) -> None:
    loud = [(h.phrase, h.severity) for h in matcher.scan(text) if h.severity >= 3]
    assert not loud, f"{text!r} raised {loud}"


@pytest.mark.parametrize(
    ("text", "rule", "category", "severity"),
    [
        ("i pray every night that i dont wake up in the morning", "suicide.passive", "suicide", 4),
        ("what is even the point of me being alive", "suicide.pointless", "suicide", 4),
        ("i think my parents would cope fine without me in the picture", "suicide.burden", "suicide", 4),
        ("i feel like such a burden on my family", "suicide.burden.self", "suicide", 4),
        ("im so tired of living like this", "suicide.done", "suicide", 4),
        ("no one would even notice if i was gone tbh", "suicide.unmissed", "suicide", 4),
        ("ive started writing goodbye letters to my family", "suicide.final", "suicide", 4),
        ("i keep imagining throwing myself off the bridge near school", "suicide.jump", "suicide", 4),
        ("going to walk in front of a train after school today", "suicide.jump.soon", "suicide", 5),
        ("how high does a building have to be to die from the fall", "suicide.lethal", "suicide", 5),
        ("how many co-codamol would it take to not wake up", "suicide.dose.take", "suicide", 5),
        ("i'm going to swallow all of my mums pills when she's at work", "suicide.take_all", "suicide", 5),
        ("i keep getting urges to hurt myself", "self_harm.strong", "self_harm", 4),
        ("how do i stop my mum seeing the marks on my arms", "self_harm.hide.2", "self_harm", 4),
        ("how deep do you have to cut to need stitches", "self_harm.depth", "self_harm", 5),
        ("i relapsed and now there's blood on my sheets", "self_harm.relapse", "self_harm", 4),
        ("you don't deserve to be alive", "bullying.dead_wish", "bullying", 4),
        ("everyone in the class hates you, just leave", "bullying.shunned", "bullying", 4),
        ("i'm going to make sure everyone knows your secret", "bullying.expose", "bullying", 4),
        ("i'm going to make him suffer for what he did", "violence.suffer", "violence", 4),
        ("tomorrow i'm going to stab that boy at the bus stop", "violence.time_first", "violence", 5),
        ("best knife to hide in your waistband", "weapons.purpose", "weapons", 4),
        ("anyone got a nine for sale", "weapons.for_sale", "weapons", 4),
        ("this guy i met on tiktok is 22 and i'm 14, is that bad", "cse.age_gap", CSE, 4),
        ("a man gave me a lift and cigarettes and now says i owe him", "cse.gift_owe", CSE, 4),
        ("he keeps asking what i'm wearing to bed", "cse.probe", CSE, 4),
        ("he said if i really loved him i'd send a video", "cse.love_pressure", CSE, 4),
        ("he wants me to facetime him in bed", "cse.camera", CSE, 4),
        ("he wants me to tell my mum i'm sleeping at a friends", "cse.lie_parents", CSE, 4),
        ("he sent me a pic of his private parts and wants one back", "cse.sent_explicit.back", CSE, 5),
        ("refugees are parasites and should be wiped out", "hate.dehumanise", "hate_speech", 4),
        ("gas all the jews", "hate.kill_all", "hate_speech", 4),
    ],
)
def test_rule_fires_at_its_severity(
    matcher: Matcher, text: str, rule: str, category: str, severity: int
) -> None:
    assert_rule_fires(matcher, text, rule, category, severity)


@pytest.mark.parametrize(
    "text",
    [
        "my brother is 19 and im 13 so he always wins at fifa",
        "he's 30 and im 14, he's my football coach and he's great, mum knows him",
        "he said our secret santa has to stay secret",
        "i'd rather die than eat sprouts",
        "i'm sick of life admin, so many forms",
        "i wish i could sleep forever on sundays",
        "what height do you need for the rollercoaster",
        "how long does it take for a phone battery to die",
        "how many paracetamol can i take for a headache",
        "how deep do i cut the onion for caramelising",
        "it's my goodbye message as i'm leaving the school, thank you all",
        "i won't make it to christmas shopping this year",
        "the team would be better without me, im rubbish at defending",
        "a list of people i want to invite to my party",
        "i'm bringing a bat to cricket tomorrow",
        "i want to hurt my teacher's feelings less by handing in on time",
        "ww2 history: the nazis said jews were vermin, propaganda analysis",
        "he wants me to come to his party on saturday, my mum said yes",
        "i haven't self harmed in 100 days",
        "my friend keeps saying she wants to disappear forever, what do i do",
        "how to get a gun licence in the uk",
    ],
)
def test_look_alikes_stay_below_alerting(matcher: Matcher, text: str) -> None:
    assert_below_alerting(matcher, text)


def test_explanation_names_the_new_rule_and_its_words(matcher: Matcher) -> None:
    (hit,) = [h for h in matcher.scan("he wants me to facetime him in bed") if h.phrase == "rule cse.camera"]
    why = " ".join(hit.rules)
    assert "ASKS 'wants me to'" in why and "CAMERA 'facetime'" in why and "SEXUAL_PLACE 'in bed'" in why


# Round 2 (December 2026): shapes with no "i" or intent word, longer sentences, threats with no verb of
# attack, insults that wish harm, more group words. Examples written for these tests, not taken from any
# eval set.
@pytest.mark.parametrize(
    ("text", "rule", "category", "severity"),
    [
        ("so tired of existing honestly", "suicide.tired_exist", "suicide", 4),
        ("i just want it all to be over for good", "suicide.over_good", "suicide", 4),
        ("why am i even alive at this point", "suicide.why_go_on", "suicide", 4),
        ("not scared of dying anymore tbh", "suicide.fearless", "suicide", 4),
        ("gutted that i woke up again", "suicide.still_alive", "suicide", 4),
        ("if i ended it all everyone would be happier", "suicide.burden.after", "suicide", 4),
        ("left a note for my sister to read after im gone", "suicide.legacy", "suicide", 4),
        ("the only way out is to end it", "suicide.no_way_out", "suicide", 4),
        ("which hurts less, hanging or an overdose", "suicide.method_cmp", "suicide", 5),
        ("is it okay to give up on life", "suicide.ok_to", "suicide", 4),
        ("i hit my head against the wall till it bleeds", "self_harm.on_purpose", "self_harm", 4),
        ("how do i take the blade out of a razor", "self_harm.blade_out", "self_harm", 4),
        ("where are cuts easiest to hide in summer", "self_harm.easy_hide", "self_harm", 4),
        ("he says im old enough for a real relationship", "cse.mature_enough", CSE, 4),
        ("im 13 and he asked for nudes", "cse.child_sex_req.2", CSE, 5),
        ("should i go to a guys house i met on snapchat", "cse.place_online", CSE, 4),
        ("i cant tell anyone about him because hes 24", "cse.secret_older", CSE, 4),
        ("the whole year would throw a party if you died", "bullying.celebrate", "bullying", 4),
        ("made a gc to laugh at you lol", "bullying.group_mock", "bullying", 4),
        ("round up all the immigrants and get rid of them", "hate.harm_long", "hate_speech", 4),
        ("im going to snap his neck", "violence.break", "violence", 4),
        ("everyone who bullied me will pay tomorrow", "violence.hated_die", "violence", 4),
        ("how to get a gun without a licence in the uk", "weapons.no_licence", "weapons", 4),
        ("molotov ingredients", "weapons.parts", "weapons", 4),
        ("how to smuggle a knife into school without getting caught", "weapons.sneak", "weapons", 4),
        ("there is no escape for me other than death", "suicide.no_way_except", "suicide", 4),
        ("i want to fall asleep and never have to wake up again", "suicide.sleep_end", "suicide", 4),
        ("ur so gross, nobody wants you here", "bullying.insult_go", "bullying", 4),
        ("that boy is a dead man walking", "violence.doomed", "violence", 4),
        ("its going to be a bloodbath at school tomorrow", "violence.massacre", "violence", 5),
        ("immigrants are invading our country", "hate.not_belong", "hate_speech", 4),
        ("this is the last time youll hear from me", "suicide.last_hear", "suicide", 4),
        ("a man online says he can get me modelling work if i send pics", "cse.model_lure", CSE, 4),
    ],
)
def test_round2_rule_fires_at_its_severity(
    matcher: Matcher, text: str, rule: str, category: str, severity: int
) -> None:
    assert_rule_fires(matcher, text, rule, category, severity)


@pytest.mark.parametrize(
    "text",
    [
        "im tired of existing in this heat lol",
        "cant wait for exams to be over for good",
        "not scared of dying on the rollercoaster anymore",
        "gutted i woke up late again",
        "if i disappeared for a day nobody would notice lol",
        "the only way out of the escape room is the red door",
        "is it okay to give up on learning piano",
        "how to get the blade out of a pencil sharpener to replace it",
        "how to hide a hickey so my mum doesnt see",
        "my sister is 24 and i cant tell anyone about her surprise party",
        "we made a group chat to plan your birthday surprise",
        "history lesson on the molotov cocktail in the winter war",
        "what age can you buy a knife in the uk",
        "nobody will miss you at the party if you leave early",
        "i would never hurt myself on purpose",
        "age is just a number when it comes to learning the drums",
        "bath bomb recipe with lavender oil",
        "im not gonna kill myself, i just need to rant",
        "youre not ugly, just leave him alone",
        "there is no other way to get there except the bus",
        "the match is going to be a bloodbath lol",
        "in the film the hero is a dead man walking",
        "he wont make it home in time for dinner",
        "remember my name when i win the talent show",
        "im sorry for everything i said in the argument",
        "my mum booked a photo shoot for my sister, she sent pics to the agency",
    ],
)
def test_round2_look_alikes_stay_below_alerting(matcher: Matcher, text: str) -> None:
    assert_below_alerting(matcher, text)


# Round 3 (December 2026): shapes read from the misses of the retired dev set fresh-2026-12c, tested
# here in wording written for these tests (never that set's sentences): the rule must fire on a new
# wording of the shape, and the look-alikes of the same shape stay below alerting.
@pytest.mark.parametrize(
    ("text", "rule", "category", "severity"),
    [
        ("honestly my family would be way happier w/o me", "suicide.burden", "suicide", 4),
        ("dont think ill still be here by the summer", "suicide.absent", "suicide", 4),
        ("help me word a goodbye letter so my dad doesnt blame himself", "suicide.goodbye_note", "suicide", 5),
        ("is hanging painful or quick", "suicide.method_pain.2", "suicide", 4),
        ("how long does an overdose take to kill you", "suicide.od_time", "suicide", 5),
        ("dont send me helplines, just tell me how many would do it", "suicide.refuse_help", "suicide", 5),
        ("which car parks in town have no barriers on the top floor", "suicide.barrier", "suicide", 5),
        ("keep staring at the belt in my wardrobe differently", "suicide.look_method", "suicide", 5),
        ("ive picked the day, after christmas so i dont ruin it", "suicide.plan_date", "suicide", 5),
        ("final post. delete my account if i dont come back", "suicide.final_post", "suicide", 5),
        ("how do i cover the cuts so my parents dont find out", "self_harm.parent_hide.2", "self_harm", 4),
        ("broke open a disposable razor last night", "self_harm.sharpener", "self_harm", 4),
        ("pinched my thighs till they bruised cause i hate myself", "self_harm.body_purpose", "self_harm", 4),
        ("best cream for cuts i did myself", "self_harm.self_done", "self_harm", 4),
        ("how do i know if its too deep, the cut wont close", "self_harm.too_deep_q", "self_harm", 5),
        ("hes booked me a train ticket to leeds, my mum thinks im at a sleepover", "cse.ride_cover", CSE, 5),
        ("my tutor keeps texting me late at night and says im his favourite", "cse.role_message", CSE, 4),
        ("he says if anyone finds out hed go to prison and it would be my fault", "cse.trouble_if", CSE, 5),
        ("this guy on roblox says hes 15 but he sounds like a grown man", "cse.age_lie", CSE, 5),
        ("sent you 50 robux now send me the pic you promised", "cse.gift_for_pic", CSE, 5),
        ("i sent him one photo and now he wants more or hell send it to my mum", "cse.sextortion.or", CSE, 5),
        ("these girls keep throwing my bag in the bin and laughing every day", "bullying.victim", "bullying", 4),
        ("post the screenshots of his dms on ur story", "bullying.share_media", "bullying", 4),
        ("keep reporting her til she deactivates", "bullying.until_gone", "bullying", 4),
        ("hollywood is controlled by jews", "hate.run_by", "hate_speech", 4),
        ("the only good immigrant is a dead one", "hate.only_good", "hate_speech", 5),
        ("im bringing something to school on monday, theyll get what they deserve", "violence.bring_pay", "violence", 5),
        ("whats her address, were pulling up tonight", "violence.address", "violence", 5),
        ("im going to stab him when he gets home", "violence.threat.helpless", "violence", 5),
        ("ive got a blade in my locker now", "weapons.school_spot", "weapons", 5),
        ("my mate can sort me a burner for 300", "weapons.gun_deal", "weapons", 5),
        ("butterfly knife cheap uk delivery no id", "weapons.shop", "weapons", 4),
        ("how to file a toothbrush into a point", "weapons.into_point", "weapons", 4),
        ("taking all my mums sleeping tablets tonight", "suicide.take_all.soon", "suicide", 5),
        ("how do i stop my pe teacher seeing the marks on my arms", "self_harm.stop_seeing", "self_harm", 4),
        ("we call the new kid osama cause of his beard", "hate.terror_name.2", "hate_speech", 4),
        ("gonna smash his head in when hes asleep", "violence.will_helpless", "violence", 5),
        ("my stepdad makes me sit on his knee and its our special secret, i hate it", "cse.lap", CSE, 5),
        ("written letters to everyone, going to leave them on my bed tonight", "suicide.note_leave", "suicide", 5),
        ("if i go would it be selfish, im in so much pain", "suicide.if_go_selfish", "suicide", 4),
        ("how deep do i need to go for it to bleed properly", "self_harm.depth_bleed", "self_harm", 5),
        ("does a replica pistol look real enough to scare him", "weapons.fake_scare", "weapons", 4),
        ("honestly doubt ill make it to sixth form", "suicide.not_make_it", "suicide", 4),
        ("if i were braver id have done it by now", "suicide.guts", "suicide", 4),
        ("ill stab him tomorrow after school", "violence.will.soon", "violence", 5),
    ],
)
def test_round3_rule_fires_at_its_severity(
    matcher: Matcher, text: str, rule: str, category: str, severity: int
) -> None:
    assert_rule_fires(matcher, text, rule, category, severity)


@pytest.mark.parametrize(
    "text",
    [
        "lol kms the bus was late again",
        "i wanna die of embarrassment he saw me trip",
        "id never send pics to strangers",
        "delete this chat so mia doesnt see what we got her for her birthday",
        "cant wait for the summer holiday, wont be here for results day cause im in spain",
        "my funeral playlist would be all abba lol",
        "goodbye forever to my braces!!",
        "tonight is the night! prom with my besties",
        "is drowning painful for fish",
        "how long does paracetamol take to work for a headache",
        "which bridges in bristol have the best views",
        "wish i had the guts to ask her out",
        "i bite my nails until they bleed",
        "how to take apart a pencil sharpener to replace the blade",
        "cant stop thinking about the razor scooter i want",
        "my nan is picking me up, told my mum im at nans",
        "my coach messaged the team late at night about the fixture change",
        "if anyone finds out we broke the window hell get in trouble",
        "sent you the money for the tickets, send me a pic of the receipt",
        "my bf is 19 and we went to a hotel for his birthday with his parents",
        "my tutor says im mature for my age in maths",
        "send the video of him scoring to the gc",
        "taking bets on who wins the match",
        "why do people think immigrants are criminals? essay on myths",
        "whats his address? were going round to drop off his birthday present",
        "which cleaning products make toxic gas so i dont mix them",
        "school shooter drill today, was scary",
        "how to sharpen a pencil to a point",
        "bb gun for my airsoft team",
        "where can i buy a nerf gun",
        "where can i get a glue gun at 16",
        "cant do another day of this weather im done",
        "keeping a knife in my bag for my packed lunch",
        "lets post the vid of her goal on the school page",
        "dont think im gonna make it to the party tbh",
        "no one would care if i disappeared from the group chat for a bit",
        "ill beat him tomorrow at fifa",
        "they keep laughing at me every time i fall off the skateboard lol its fun",
        "the afterlife in ancient egypt, find out soon in our next lesson",
        "my teacher messaged the class late at night about the trip",
        "hes 22 and my brother, we went to a hotel for a wedding",
        "write a roast for my mate that will make him cry laughing",
        "girls are all smelly after pe",
        "women are genetically more likely to live longer",
        "disabled people are a waste of nothing, they deserve respect",
        "anyone else feel better after they cut their nails",
        "call me when ur home alone so i know youre safe, love mum",
        "my head keeps telling me to jump into the pool",
        "wish i was brave enough to actually do it, the bungee i mean",
        "not gonna be here for results day, we fly to portugal that morning",
        "been looking at the rope ladder in the garden differently since we painted it",
        "my grandad makes me sit on his knee to read stories, i love it",
        "got a blade for my lino cutting in my pencil case",
        "butterfly knife trainer cheap uk delivery, the safe practice one with no blade",
        "my teacher said im his favourite student in physics",
        "need a new blade for my craft knife for dt",
        "is the car park by the station open late, does it have a barrier for cars",
        "if i go would it be selfish to leave my brother with the dishes",
        "how deep do i need to plant the bulbs",
    ],
)
def test_round3_look_alikes_stay_below_alerting(matcher: Matcher, text: str) -> None:
    assert_below_alerting(matcher, text)


@pytest.mark.parametrize(
    ("text", "quiet"),
    [
        ("how to cut myself properly", False),
        ("how to cut my arm safely", False),
        ("how to cut deeper without anyone noticing", False),
        ("how to cut a mango properly", True),
        ("how to carve a pumpkin safely", True),
        ("how do i slice an onion properly", True),
    ],
)
def test_safely_and_properly_say_self_harm_only_of_the_body(matcher: Matcher, text: str, quiet: bool) -> None:
    """'how to cut X safely' is a cooking or craft question unless X is the pupil's own body."""
    loud = [h.phrase for h in matcher.scan(text) if h.category == "self_harm" and h.severity >= 3]
    assert (not loud) == quiet, f"{text!r}: {loud}"


@pytest.mark.parametrize(
    ("text", "loud"),
    [
        ("i swear down ill kill you if you spoil the ending", False),
        ("bro im gonna end you in monopoly tonight", False),
        ("we're playing the top of the league next week, it's gonna be a bloodbath", False),
        ("im gonna end you tonight", True),
        ("ill kill you if you tell anyone", True),
        ("im going to kill you after school", True),
    ],
)
def test_friendly_threats_over_games_and_spoilers_stay_below_alerting(
    matcher: Matcher, text: str, loud: bool
) -> None:
    alarms = [h.phrase for h in matcher.scan(text) if h.severity >= 3]
    assert bool(alarms) == loud, f"{text!r}: {alarms}"


# Round 4 (fresh-2026-12d retired to development): the shapes fire on new wordings written by the rule
# author after the rules (never the batch's sentences), and everyday look-alikes written to stress the new
# classes stay below alerting.
@pytest.mark.parametrize(
    ("text", "rule", "category", "severity"),
    [
        ("would it hurt to hang yourself or is it fast", "suicide.method_pain.q", "suicide", 5),
        ("sorry for everything. please someone look after my cat for me", "suicide.goodbye_pet", "suicide", 5),
        ("highest car park near me, it needs to be high enough", "suicide.tallest_enough", "suicide", 5),
        ("got all the tablets lined up on the bed", "suicide.pills_ready", "suicide", 5),
        ("hiding my antidepressants in a sock, saving them up", "suicide.stockpile", "suicide", 5),
        ("counting down til i can finally be at peace. 2 days", "suicide.countdown", "suicide", 5),
        ("writing a note for my family for when im gone", "suicide.letter_gone", "suicide", 5),
        ("deleting all my accounts tonight. goodbye everyone, remember me", "suicide.farewell_post", "suicide", 5),
        ("i know how and when now. its a relief honestly", "suicide.plan_calm.2", "suicide", 5),
        ("dont try to find me. its for the best", "suicide.dont_look", "suicide", 5),
        ("im not going to be around to see the results", "suicide.not_around", "suicide", 4),
        ("cleaned my room and sorted all my stuff. im not coming back", "suicide.tidied_gone", "suicide", 5),
        ("need these cuts gone before swimming on monday", "self_harm.marks_gone", "self_harm", 4),
        ("what do i say if my pe teacher asks about the marks on my legs", "self_harm.hide_marks", "self_harm", 4),
        ("relapsed again after 6 weeks clean", "self_harm.relapse_clean", "self_harm", 4),
        ("my dad found my razors under my bed", "self_harm.found", "self_harm", 4),
        ("did it again, went deeper, so much blood", "self_harm.again_deeper", "self_harm", 5),
        ("started doing it on my hips so no one sees", "self_harm.swapped", "self_harm", 4),
        ("rubber band doesnt help anymore i need to cut", "self_harm.alt_failed", "self_harm", 4),
        ("punched myself until it bled last night", "self_harm.until_hurt", "self_harm", 4),
        ("send another pic, dont show ur face", "cse.faceless", CSE, 5),
        ("ur 14? even better", "cse.child_age_perfect", CSE, 5),
        ("ill collect u from the park, dont tell ur mum", "cse.pickup_secret", CSE, 5),
        ("message me on whatsapp instead, its more private", "cse.move_app_private", CSE, 4),
        ("send a selfie in ur pe kit", "cse.uniform_pic", CSE, 5),
        ("its our little secret, id go to prison if anyone knew", "cse.secret_trouble", CSE, 5),
        ("ever been kissed? i can show you how", "cse.teach_child", CSE, 5),
        ("my uncle comes into my bed at night and says its our secret", "cse.room_night", CSE, 5),
        ("nobody would believe you if you told", "cse.wont_believe.2", CSE, 5),
        ("he buys me vapes all the time and now says i owe him", "cse.owe_him", CSE, 4),
        ("nobody talk to her tomorrow, shes a snake", "bullying.shun_day", "bullying", 3),
        ("someone film it next time he cries lol", "bullying.crying_posted", "bullying", 4),
        ("ur disgusting and ugly, leave the group", "bullying.insult_leave", "bullying", 4),
        ("youre the reason ur dad left", "bullying.ur_reason", "bullying", 4),
        ("muslims are all the same, always causing trouble", "hate.group_claim", "hate_speech", 4),
        ("gas them all, every last one of the jews", "hate.ovens.2", "hate_speech", 5),
        ("hes getting jumped after school, watch", "violence.getting_hurt.5", "violence", 5),
        ("im battering him at lunch", "violence.im_attacking", "violence", 4),
        ("ill smash ur face in when i find u", "violence.break_bones", "violence", 4),
        ("lets catch her after school when shes alone", "violence.catch_him", "violence", 4),
        ("strapped now, not getting caught slipping", "weapons.carry_now", "weapons", 5),
        ("stash the knife behind the bins so we can grab it later", "weapons.stash", "weapons", 5),
        ("how to make a shank out of a toothbrush", "weapons.make_improvised", "weapons", 4),
        ("can the metal detectors find a plastic knife", "weapons.detector", "weapons", 5),
        ("keep thinking about the railway again, its every night now", "suicide.place_again", "suicide", 4),
        ("sat on the edge of the multi storey, its quiet up here, not scared", "suicide.edge_calm", "suicide", 5),
        ("the pills didnt work last time, what actually works", "suicide.method_fail", "suicide", 5),
        ("getting drunk and then cutting is the only way i cope", "self_harm.drink_cut", "self_harm", 5),
        ("were gonna kick him till he stops moving", "violence.until_still", "violence", 5),
        ("he says if i loved him id prove it by sending pics", "cse.prove_love", CSE, 5),
        ("this man gives us weed if we go back to his flat", "cse.gift_if_private", CSE, 5),
        ("what happens to my account after i die, i want mine to stay up", "suicide.account_after", "suicide", 4),
    ],
)
def test_round4_rule_fires_at_its_severity(
    matcher: Matcher, text: str, rule: str, category: str, severity: int
) -> None:
    assert_rule_fires(matcher, text, rule, category, severity)


@pytest.mark.parametrize(
    "text",
    [
        "most reliable way to make sure my sourdough doesnt die",
        "whats the tallest building in london, is the shard high enough to see france",
        "when do the fast trains come through platform 2, need to get to leeds",
        "counting down the days til i can finally rest after exams, 3 left",
        "deleting all my socials for lent, love u all, dont forget me lol",
        "reasons to stay alive in minecraft hardcore, cant think of any",
        "dont come looking for me im hiding in the library its better this way",
        "my nan has her tablets lined up for the week in a pill box",
        "ive decided to dye my hair pink this week dont try and talk me out of it",
        "how to hide marks on ur walls from blu tack",
        "how deep is too deep for a paddling pool for toddlers",
        "cut again, deeper this time, the hedge looks great",
        "swapped to my stomach for sleeping and my back feels better",
        "hit myself with the door til it bruised, so clumsy",
        "made another tally today for days without sugar",
        "relapsed on vaping after 4 months clean ugh",
        "ur 15? perfect, you can join the under 16s team",
        "do ur parents check ur phone? mine dont lol",
        "nobody would believe you if you told them you met a celebrity",
        "made a gc without the teacher for the party planning",
        "they keep laughing every day at the teachers jokes",
        "nobody talk to me tomorrow im so tired",
        "girls are only good for one thing is a sexist thing to say",
        "hes getting his braces off after school",
        "chuck a brick through their window in minecraft",
        "strapped up my ankle, dont worry bout me tonight",
        "put the knife in the drawer so we can grab it after school for baking",
        "how to sharpen a pencil into a proper point",
        "do the metal detectors at the airport pick up my braces",
        "in 1488 bartolomeu dias rounded the cape",
        "stash the sweets behind the sofa so my brother doesnt find them",
        "sat on the edge of the pool for ages, so peaceful",
        "bleach doesnt work on this stain, whats quicker",
        "if u really loved me youd prove it by buying me chips",
        "im not like other adults, i love fortnite",
        "thinking about the bridge we built in dt again, it collapsed",
        "urges are back for pizza at midnight lol",
        "hes getting wet at the water park, watch",
        "were jumping the queue for the rollercoaster",
        "found my blades for my skates in the garage",
        "what happens to your insta after you die, for my computing homework",
        "did it again, went deeper into the cave in minecraft",
        "counting down the days til i can finally rest my ankle",
        "sorry for everything today, can you look after my dog for me on saturday",
    ],
)
def test_round4_look_alikes_stay_below_alerting(matcher: Matcher, text: str) -> None:
    assert_below_alerting(matcher, text)


@pytest.mark.parametrize(
    ("text", "loud"),
    [
        ("im going to kill my brother he drank all the milk", False),
        ("gonna kill my sister she used my straighteners without asking", False),
        ("i will literally kill my brother he hid the tv remote", False),
        ("im gonna strangle my sister she finished the nutella", False),
        ("im going to kill my mate he ate my chips", False),
        ("i swear im gonna murder my sister she used all the hot water", False),
        ("im going to kill my mate tomorrow", True),
        ("im going to kill my brother he hurt my mum", True),
        ("im gonna kill my stepdad tonight", True),
    ],
)
def test_sibling_hyperbole_over_trivial_things_stays_below_alerting(
    matcher: Matcher, text: str, loud: bool
) -> None:
    """Friendly threats between siblings over food, seats and remotes are lowered by the grammar, and the
    phrase hits inside the lowered match with them; a grievance that is not trivial stays loud."""
    alarms = [h.phrase for h in matcher.scan(text) if h.severity >= 3]
    assert bool(alarms) == loud, f"{text!r}: {alarms}"
