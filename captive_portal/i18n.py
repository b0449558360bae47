"""The portal's own words in English and Welsh (the AUP itself comes from the policy files)."""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "signin_title": "Sign in to the school Wi-Fi",
        "intro": "Please read the Acceptable Use Policy, then sign in with your school account.",
        "version": "Version",
        "username": "Username",
        "password": "Password",
        "accept_note": "By signing in you accept the Acceptable Use Policy above (version {version}).",
        "signin": "Accept the AUP and sign in",
        "bad_login": "Wrong username or password. Please try again.",
        "too_many": "Too many sign-in attempts. Please wait a few minutes and try again.",
        "directory_down": "Sign-in is not available right now. Please try again shortly or ask IT.",
        "welcome_title": "You are signed in",
        "welcome": "You are signed in as {name}. You can now use the Wi-Fi.",
        "continue": "Continue",
        "ca_title": "Install the school certificate",
        "ca_intro": (
            "The school checks secure (https) pages for safeguarding. Install the school's "
            "certificate once on this device so that secure sites open without warnings."
        ),
        "ca_link": "Install the school certificate",
        "trust_checking": "Checking whether this device trusts the school certificate...",
        "trust_yes": "This device trusts the school certificate.",
        "trust_no": "This device does not trust the school certificate yet: follow the steps below.",
        "signout": "Sign out of this device",
        "signed_out": "You have signed out of this device.",
        "error_title": "Something went wrong",
        "error": "The page could not be shown. Please go back to the sign-in page and try again.",
        "expired": "This form has expired. Please go back to the sign-in page and try again.",
        "back": "Back to the sign-in page",
        "fingerprint": "Certificate fingerprint (SHA-256)",
        "no_ca": "The school certificate is not available yet. Please ask IT.",
        "language": "Cymraeg",
    },
    "cy": {
        "signin_title": "Mewngofnodi i Wi-Fi yr ysgol",
        "intro": "Darllenwch y Polisi Defnydd Derbyniol, yna mewngofnodwch gyda'ch cyfrif ysgol.",
        "version": "Fersiwn",
        "username": "Enw defnyddiwr",
        "password": "Cyfrinair",
        "accept_note": (
            "Drwy fewngofnodi rydych yn derbyn y Polisi Defnydd Derbyniol uchod (fersiwn {version})."
        ),
        "signin": "Derbyn y polisi a mewngofnodi",
        "bad_login": "Enw defnyddiwr neu gyfrinair anghywir. Rhowch gynnig arall arni.",
        "too_many": "Gormod o ymdrechion i fewngofnodi. Arhoswch ychydig funudau a rhowch gynnig arall arni.",
        "directory_down": "Nid yw mewngofnodi ar gael ar hyn o bryd. Rhowch gynnig arall arni cyn hir.",
        "welcome_title": "Rydych wedi mewngofnodi",
        "welcome": "Rydych wedi mewngofnodi fel {name}. Gallwch ddefnyddio'r Wi-Fi nawr.",
        "continue": "Parhau",
        "ca_title": "Gosod tystysgrif yr ysgol",
        "ca_intro": (
            "Mae'r ysgol yn gwirio tudalennau diogel (https) er mwyn diogelu. Gosodwch dystysgrif "
            "yr ysgol unwaith ar y ddyfais hon fel bod gwefannau diogel yn agor heb rybuddion."
        ),
        "ca_link": "Gosod tystysgrif yr ysgol",
        "trust_checking": "Yn gwirio a yw'r ddyfais hon yn ymddiried yn nhystysgrif yr ysgol...",
        "trust_yes": "Mae'r ddyfais hon yn ymddiried yn nhystysgrif yr ysgol.",
        "trust_no": "Nid yw'r ddyfais hon yn ymddiried yn nhystysgrif yr ysgol eto: dilynwch y camau isod.",
        "signout": "Allgofnodi o'r ddyfais hon",
        "signed_out": "Rydych wedi allgofnodi o'r ddyfais hon.",
        "error_title": "Aeth rhywbeth o'i le",
        "error": (
            "Nid oedd modd dangos y dudalen. Ewch yn ôl i'r dudalen fewngofnodi a rhowch gynnig arall arni."
        ),
        "expired": (
            "Mae'r ffurflen hon wedi dod i ben. Ewch yn ôl i'r dudalen fewngofnodi a rhowch gynnig arall."
        ),
        "back": "Yn ôl i'r dudalen fewngofnodi",
        "fingerprint": "Ôl bys y dystysgrif (SHA-256)",
        "no_ca": "Nid yw tystysgrif yr ysgol ar gael eto. Gofynnwch i'r adran TG.",
        "language": "English",
    },
}


def strings(language: str) -> dict[str, str]:
    return STRINGS.get(language, STRINGS["en"])
