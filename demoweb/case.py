"""The demo case's pages: fictional stand-ins for the sources of ``cases/new-caledonia.yaml``.

The motivating case (New Caledonia, May 2024; ``CASE.md`` in the project's shared notes) lists
claims that a news article reported. ``attest demo`` serves, beside the generated sites, one
page or post standing for each kind of source those claims point to:

- news articles (``/2024/05/<dd>/<slug>.html`` on the news site, linked from its home page,
  RSS feed and sitemap) reporting C1, C2, C3, C5, C7, C9, C10, C12 and both counter-statements;
- press releases of "the Baku Initiative Group (BIG)", in English (``/press/big-<slug>.html``)
  and French (``/fr/communiques/big-<slug>.html``), first on page 1 of the NGO site's listings,
  each with a PDF (``/files/big-<slug>.pdf``), for C3-C7, C10 and C11;
- social posts (on the JavaScript social site) for C1, C2, C4, C6, C8 and the denial, all
  tagged ``#NouvelleCaledonie`` and listed by the tag page ``/tag/NouvelleCaledonie``.

Every one of them says, in its own text, that it is a fictional demo reproduction: it reports
what the article says was claimed, names no real person and establishes nothing. The claims
and their evidence links are in ``cases/new-caledonia.yaml``; the demo serves these pages on
fixed ports (:data:`DEMO_PORTS`) so that the case file can name their URLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from demoweb.social import Authored, Profile

#: Where ``attest demo`` serves the sites the case file names (127.0.0.1:<port>).
DEMO_PORTS = {"news": 8781, "ngo": 8782, "social": 8783}

#: The tag that lists every case post on the social site (``/tag/<TAG>``).
TAG = "NouvelleCaledonie"

NOTICE_EN = (
    "Fictional demo reproduction: this page was written for attest's demo case. It stands in "
    "for a source described by a May 2024 L'Express article, reports claims as claims, quotes "
    "no real person and establishes no fact."
)
NOTICE_FR = (
    "Reproduction fictive pour la démonstration : cette page a été écrite pour le cas de "
    "démonstration d'attest. Elle tient lieu d'une source décrite par un article de L'Express "
    "de mai 2024, rapporte des affirmations comme telles, ne cite aucune personne réelle et "
    "n'établit aucun fait."
)
POST_NOTICE = "[Fictional demo post]"


@dataclass(frozen=True)
class CaseArticle:
    """A news article of the demo case (news site)."""

    path: str
    date: str  # YYYY-MM-DD, shown on the page
    title: str
    paragraphs: tuple[str, ...]
    claims: tuple[str, ...]


@dataclass(frozen=True)
class CaseRelease:
    """A press release of the demo case (NGO site), in English and French."""

    slug: str
    date: str
    title_en: str
    title_fr: str
    en: tuple[str, ...]
    fr: tuple[str, ...]
    claims: tuple[str, ...]

    @property
    def en_path(self) -> str:
        return f"/press/big-{self.slug}.html"

    @property
    def fr_path(self) -> str:
        return f"/fr/communiques/big-{self.slug}.html"

    @property
    def pdf_path(self) -> str:
        return f"/files/big-{self.slug}.pdf"


CASE_ARTICLES = (
    CaseArticle(
        path="/2024/05/16/azerbaijani-flags-noumea.html",
        date="2024-05-16",
        title="New Caledonia unrest: Azerbaijani flags at pro-independence rallies",
        paragraphs=(
            "Azerbaijani flags were flown at pro-independence rallies in Nouméa from 13 May "
            "2024, during the protests against the reform of the electoral body, according to "
            "photographs shared on social networks.",
            "Some demonstrators wore T-shirts bearing the logo of the Baku Initiative Group "
            "(BIG), an Azerbaijani NGO.",
            'The French Interior Minister said that some Caledonian separatists "made a deal '
            'with Azerbaijan".',
            "Azerbaijan's foreign ministry denied any interference in New Caledonia and called "
            "the accusations baseless.",
        ),
        claims=("C1", "C2", "C3", "C2-counter"),
    ),
    CaseArticle(
        path="/2024/05/17/baku-overseas-ties.html",
        date="2024-05-17",
        title="Delegations, memoranda and journalists: Baku's overseas ties, as reported",
        paragraphs=(
            "The director of the Baku Initiative Group, a former Deputy Prime Minister of "
            "Azerbaijan, has publicly declared his support for the Kanak struggle.",
            "In April 2024 a New Caledonian delegation led by an elected official travelled to "
            "Baku and signed a memorandum of parliamentary cooperation with the president of "
            "Azerbaijan's parliament.",
            "In early May 2024 French Polynesia's pro-independence party, Tavini Huiraatira, "
            "signed a memorandum of cooperation with Azerbaijani officials.",
            "In December 2023 two Azerbaijani journalists, described as close to Azerbaijan's "
            "intelligence services, were turned away during the French Armed Forces Minister's "
            "visit to Nouméa.",
            "In February 2024 Azerbaijani journalists covered the Corsican independence "
            "movement's demonstrations during the French President's visit to the island.",
        ),
        claims=("C5", "C7", "C9", "C10", "C12"),
    ),
    CaseArticle(
        path="/2024/05/21/kanak-representative-un.html",
        date="2024-05-21",
        title="At the UN, a Kanak representative answers the accusations",
        paragraphs=(
            "Speaking at the United Nations, a representative of the Kanak pro-independence "
            'movement said the movement works "with Azerbaijan, of course, but also with many '
            'other countries".',
            "Azerbaijan has again denied interfering in France's overseas territories.",
        ),
        claims=("C7-counter", "C2-counter"),
    ),
)

CASE_RELEASES = (
    CaseRelease(
        slug="kanak-solidarity",
        date="2024-05-15",
        title_en="BIG stands with the Kanak people",
        title_fr="Le BIG aux côtés du peuple kanak",
        en=(
            "The Baku Initiative Group (BIG) was created in July 2023 on the sidelines of the "
            "Non-Aligned Movement and champions the fight against colonialism.",
            "BIG's director, a former Deputy Prime Minister of Azerbaijan (1992-2006), declared "
            "the organisation's support for the Kanak people's struggle.",
        ),
        fr=(
            "Le Groupe d'initiative de Bakou (BIG), créé en juillet 2023 en marge du Mouvement "
            "des non-alignés, mène « la lutte contre le colonialisme ».",
            "Le directeur du BIG, ancien vice-Premier ministre d'Azerbaïdjan (1992-2006), a "
            "déclaré le soutien de l'organisation à la lutte du peuple kanak.",
        ),
        claims=("C3", "C5"),
    ),
    CaseRelease(
        slug="eighth-conference",
        date="2024-04-10",
        title_en="Eighth conference in nine months: BIG at the United Nations",
        title_fr="Huitième conférence en neuf mois : le BIG aux Nations unies",
        en=(
            "With this meeting BIG has held eight conferences in nine months, at the UN and in "
            "European capitals, inviting independence movements from overseas territories.",
            "BIG relays the press releases of the movements it invites on its social networks.",
        ),
        fr=(
            "Avec cette réunion, le BIG a tenu huit conférences en neuf mois, à l'ONU et dans "
            "des capitales européennes, avec des mouvements indépendantistes d'outre-mer.",
            "Le BIG relaie les communiqués des mouvements invités sur ses réseaux sociaux.",
        ),
        claims=("C4",),
    ),
    CaseRelease(
        slug="video-conference-16-may",
        date="2024-05-16",
        title_en="Video conference in solidarity with New Caledonia",
        title_fr="Vidéoconférence de solidarité avec la Nouvelle-Calédonie",
        en=(
            "On 16 May 2024 BIG held a video conference with independence movements from French "
            "Polynesia, French Guiana, Martinique, Guadeloupe and Corsica, in solidarity with "
            "New Caledonia.",
        ),
        fr=(
            "Le 16 mai 2024, le BIG a tenu une vidéoconférence avec des mouvements "
            "indépendantistes de Polynésie française, de Guyane, de Martinique, de Guadeloupe "
            "et de Corse, « en solidarité » avec la Nouvelle-Calédonie.",
        ),
        claims=("C6",),
    ),
    CaseRelease(
        slug="baku-memorandum",
        date="2024-04-24",
        title_en="Memorandum of parliamentary cooperation signed in Baku",
        title_fr="Un mémorandum de coopération parlementaire signé à Bakou",
        en=(
            "A New Caledonian delegation led by an elected official visited Baku in April 2024 "
            "and signed a memorandum of parliamentary cooperation with the president of "
            "Azerbaijan's parliament.",
        ),
        fr=(
            "Une délégation néo-calédonienne conduite par une élue s'est rendue à Bakou en "
            "avril 2024 et a signé un mémorandum de coopération parlementaire avec la "
            "présidente du parlement azerbaïdjanais.",
        ),
        claims=("C7",),
    ),
    CaseRelease(
        slug="tavini-memorandum",
        date="2024-05-03",
        title_en="Tavini Huiraatira signs a memorandum of cooperation",
        title_fr="Le Tavini Huiraatira signe un mémorandum de coopération",
        en=(
            "French Polynesia's pro-independence party Tavini Huiraatira signed a memorandum of "
            "cooperation with Azerbaijani officials in early May 2024.",
        ),
        fr=(
            "Le parti indépendantiste polynésien Tavini Huiraatira a signé début mai 2024 un "
            "mémorandum de coopération avec des responsables azerbaïdjanais.",
        ),
        claims=("C10",),
    ),
    CaseRelease(
        slug="mayotte-1",
        date="2024-02-12",
        title_en="Mayotte: BIG backs the Comoros",
        title_fr="Mayotte : le BIG soutient les Comores",
        en=(
            "During the migration crisis in Mayotte, BIG backs the Union of the Comoros' claim "
            "to Mayotte.",
        ),
        fr=(
            "Pendant la crise migratoire à Mayotte, le BIG soutient la revendication de l'Union "
            "des Comores sur Mayotte.",
        ),
        claims=("C11",),
    ),
    CaseRelease(
        slug="mayotte-2",
        date="2024-02-19",
        title_en="Mayotte: a second statement by BIG",
        title_fr="Mayotte : deuxième déclaration du BIG",
        en=("BIG repeats its support for the Union of the Comoros' claim to Mayotte.",),
        fr=("Le BIG réaffirme son soutien à la revendication des Comores sur Mayotte.",),
        claims=("C11",),
    ),
)


def _at(day: int, hour: int, minute: int, month: int = 5) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


def _post(text: str, when: datetime, *, image: bool = False) -> Authored:
    return Authored(f"{POST_NOTICE} {text} #{TAG}", when, image)


#: The social accounts of the demo case, each a stand-in named by its role, with its posts
#: (newest first). Their permalinks are ``/@<handle>/post/<id>``; see ``cases/new-caledonia.yaml``.
CASE_PROFILES = (
    Profile(
        "nc_rallies_demo",
        "Nouméa rally photos (demo stand-in)",
        authored=(
            _post(
                "Azerbaijani flags at today's pro-independence rally in Nouméa, against the "
                "electoral-body reform.",
                _at(13, 7, 20),
                image=True,
            ),
        ),
    ),
    Profile(
        "interior_minister_demo",
        "French Interior Minister (demo stand-in)",
        authored=(
            _post(
                "Reproduction of a statement reported by the press: some Caledonian separatists "
                "have made a deal with Azerbaijan.",
                _at(15, 6, 45),
            ),
        ),
    ),
    Profile(
        "big_demo",
        "Baku Initiative Group, BIG (demo stand-in)",
        authored=(
            _post(
                "Relaying our partners' press release: today's video conference with movements "
                "from French Polynesia, French Guiana, Martinique, Guadeloupe and Corsica, in "
                "solidarity with New Caledonia.",
                _at(16, 14, 0),
            ),
        ),
    ),
    # C8: a burst of posts from Azerbaijani accounts within a few minutes.
    Profile(
        "az_account_1_demo",
        "Azerbaijani account 1 (demo stand-in)",
        authored=(
            _post("New Caledonia: enough of the neocolonial policy of Paris!", _at(16, 10, 1)),
        ),
    ),
    Profile(
        "az_account_2_demo",
        "Azerbaijani account 2 (demo stand-in)",
        authored=(
            _post("The neocolonial policy of Paris must end in New Caledonia.", _at(16, 10, 2)),
        ),
    ),
    Profile(
        "az_account_3_demo",
        "Azerbaijani account 3 (demo stand-in)",
        authored=(_post("Paris, stop your neocolonial policy in New Caledonia.", _at(16, 10, 3)),),
    ),
    Profile(
        "az_foreign_ministry_demo",
        "Azerbaijani foreign ministry (demo stand-in)",
        authored=(
            _post(
                "Reproduction of a statement reported by the press: Azerbaijan rejects the "
                "accusations of interference in New Caledonia.",
                _at(17, 11, 0),
            ),
        ),
    ),
)
