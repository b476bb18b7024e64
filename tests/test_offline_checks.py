"""The offline judge's targeted checks on wrong answers written in the reference's own words, and on correct
answers that must not be mistaken for them."""

from __future__ import annotations

import pytest

from evaluator.dataset import load_dataset
from evaluator.offline_checks import (
    _normalise,
    contradictions,
    denials,
    exchanged_terms,
    findings,
    keyword_list,
    known_misconceptions,
    misconceptions,
    moved_terms,
    realigned_terms,
)

from .conftest import DATA_PATH

POWER = (
    "Power increases with a larger sample size, a larger effect size and lower variability in the data. "
    "It prevents wasted studies."
)


@pytest.mark.parametrize(
    ("reference", "answer"),
    [
        # the reference uses both sides of higher/lower: the word-by-word comparison still sees the flip
        (POWER, "Power decreases with a larger sample size, a larger effect size and lower variability in the data."),
        # a negation and an opposite word in one clause are two disagreements, not a double negation
        (
            "Bagging trains models on bootstrap samples and mainly reduces variance.",
            "Bagging does not train models on bootstrap samples and mainly increases variance.",
        ),
        # short clauses that repeat the reference's words with the other polarity
        (
            "If both errors are high, the model underfits.",
            "If both errors are high, the model does not underfit.",
        ),
        (
            "Early stopping prevents overfitting, because training goes on.",
            "Early stopping does not prevent overfitting.",
        ),
        (
            "Boosting trains models sequentially, and each model focuses on the errors of the previous ones.",
            "Boosting does not train models sequentially and no model focuses on the errors of the previous ones.",
        ),
    ],
)
def test_the_reference_negated_or_turned_round_is_a_contradiction(reference: str, answer: str) -> None:
    assert {f.kind for f in contradictions(answer, reference)} == {"contradiction"}


@pytest.mark.parametrize(
    ("reference", "answer"),
    [
        (POWER, "Power grows when the sample is larger and the data vary less."),
        ("Dropout reduces overfitting.", "Dropout does not increase overfitting; it lowers it."),
        ("No, the cookies are not pure sugar.", "The cookies are not pure sugar."),
        # the contrapositive: two negations agree with the reference
        (
            "An experiment is controlled if only one variable is changed at a time.",
            "If you do not change one variable at a time it is not a controlled experiment.",
        ),
        (
            "Fruitsnap contains little or no vitamin C so Fruitsnap does not change the color of the indophenol.",
            "The indophenol did not change color with Fruitsnap because it did not have any vitamin C in it.",
        ),
        ("The battery in 2 is not in a closed path.", "The bulb is in a closed path but the battery is not."),
        # "reduces vanishing gradients" says they do not vanish
        (
            "It does not saturate, which reduces vanishing gradients and speeds up training.",
            "It is non-saturating, so gradients don't vanish and training is faster.",
        ),
        (
            "The output changes very little whether or not one person's data is included.",
            "Whether one person's data is included or not, the output changes very little.",
        ),
    ],
)
def test_answers_that_agree_with_the_reference_are_not_contradictions(reference: str, answer: str) -> None:
    assert contradictions(answer, reference) == []


GIL = (
    "CPU-bound pure-Python code gains little from threads, although I/O-bound tasks still benefit. "
    "For CPU-bound work, use multiprocessing."
)


@pytest.mark.parametrize(
    ("reference", "answer", "named"),
    [
        (
            "MSE averages the squared errors and punishes large errors; MAE averages the absolute errors.",
            "MAE averages the squared errors and punishes large errors; MSE averages the absolute errors.",
            ("mae", "mse"),
        ),
        (
            GIL,
            "I/O-bound pure-Python code gains little from threads, although CPU-bound tasks still benefit. "
            "For CPU-bound work, use multiprocessing.",
            ("i o", "cpu"),
        ),
        (  # a term of several words for a term of one
            "Smoothing mattered for n-gram models, whereas with large training corpora transformers learn context.",
            "Smoothing mattered for transformers, whereas with large training corpora n-gram models learn context.",
            ("transformers", "n gram models"),
        ),
        (
            "Fit the scaler on the training data, then apply it to the test data.",
            "Fit the scaler on the test data, then apply it to the training data.",
            ("test", "training"),
        ),
    ],
)
def test_two_terms_exchanged_in_the_references_words_are_swapped_roles(
    reference: str, answer: str, named: tuple[str, str]
) -> None:
    [finding] = exchanged_terms(reference, answer)
    assert finding.kind == "swapped roles" and all(f'"{term}"' in finding.message for term in named)


@pytest.mark.parametrize(
    ("reference", "answer"),
    [
        ("Plot the training and validation loss per epoch.", "Plot the validation and training loss per epoch."),
        ("The boat with 0 marbles is the standard.", "The standard is the boat with 0 marbles."),
        (
            "The ROC curve plots TPR against FPR; a random classifier lies on the diagonal.",
            "The ROC curve plots TPR against FPR; a randomly picked classifier lies on the diagonal, "
            "like random guessing.",
        ),
        (
            GIL,
            "Threads barely help CPU-bound pure-Python code, but I/O-bound tasks still gain; "
            "use processes for CPU work.",
        ),
    ],
)
def test_reordered_or_reworded_answers_are_not_swaps(reference: str, answer: str) -> None:
    assert exchanged_terms(reference, answer) == [] and moved_terms(reference, answer) == []


def test_terms_moved_between_two_points_of_the_reference_are_swapped_roles() -> None:
    reference = "The encoder reads the input sentence into vectors. The decoder writes the output one token at a time."
    answer = "The decoder reads the input sentence into vectors. Then the encoder writes the output token by token."
    [finding] = moved_terms(reference, answer)
    assert finding.kind == "swapped roles" and '"encoder"' in finding.message


@pytest.mark.parametrize(
    "answer",
    [
        "data drift, input feature distribution, P(X), concept drift, relationship between inputs and target, "
        "retraining",
        "- list\n- all elements in memory\n- generator\n- yield\n- lazy evaluation\n- iterate once",
        "Central Limit Theorem; sample mean; finite variance; approaches normal distribution; any population shape",
        "canary deployment\nsmall fraction of real traffic\nrollback\nshadow deployment\nnot shown to users",
        "TF-IDF term frequency inverse document frequency log total documents / documents containing word "
        "frequent in document rare in corpus high weight common words down-weighted",
        "mean median arithmetic average middle value sorted skewed outliers",
        # "A" naming an event is not the article
        "P(A|B), event A, given event B, P(A and B), P(B), sample space, Bayes' theorem",
    ],
)
def test_lists_of_terms_in_any_layout_are_keyword_lists(answer: str) -> None:
    assert [f.kind for f in keyword_list(answer)] == ["keyword list"]


@pytest.mark.parametrize(
    "answer",
    [
        "SGD steps with one fixed learning rate, while Adam adapts each parameter's step from running moments.",
        "A lizard needs food, water, air, space and a home.",
        "Dropout randomly drops neurons during training.",
        "A lizard needs food and water; a list comprehension is short, readable, fast and clear.",
        "Unsupervised learning finds structure in unlabelled data, for example clusters, topics or anomalies.",
        "Use a list when you need indexing, repeated iteration or the length; use a generator for large streams.",
        # terse notes that end like sentences
        "Keeps each class's share identical across splits so small data doesn't yield folds lacking minority cases.",
        "Dense learned vectors where similar words lie close; unlike sparse one-hots, compact and similarity-aware.",
    ],
)
def test_sentences_with_commas_are_not_keyword_lists(answer: str) -> None:
    assert keyword_list(answer) == []


def test_every_finding_names_what_it_saw() -> None:
    reference = "The median is preferred for skewed data, because outliers pull the mean but barely move the median."
    answer = "The mean is preferred for skewed data, because outliers pull the median but barely move the mean."
    kinds = {f.kind: f.message for f in findings("Mean or median?", reference, answer)}
    assert "swapped roles" in kinds and "mean" in kinds["swapped roles"]


def test_a_misconception_is_found_when_stated_not_when_denied() -> None:
    item = load_dataset(DATA_PATH).get("dl-010")
    stated = misconceptions(item.question, item.reference, "Batch norm normalizes the weight matrices of each layer.")
    assert [f.kind for f in stated] == ["misconception"]
    for denied in (
        "Batch norm normalizes the activations rather than the weight matrices.",
        "Batch norm normalizes the activations instead of the weight matrices.",
    ):
        assert misconceptions(item.question, item.reference, denied) == []


def test_known_misconceptions_are_of_shipped_questions_and_no_reference_states_one() -> None:
    dataset = load_dataset(DATA_PATH)
    known = known_misconceptions()
    assert len(known) >= 130
    assert set(known) <= {_normalise(item.question) for item in dataset.items}
    for item in dataset.items:  # no reference states its own question's misconception
        assert misconceptions(item.question, item.reference, item.reference) == [], item.id
    f1 = dataset.get("eval-006")  # the reference says "harmonic mean", the misconception "arithmetic mean"
    assert misconceptions(f1.question, f1.reference, "The F1 score is the arithmetic mean of precision and recall.")


def test_a_swap_is_reported_once() -> None:
    reference = "The mean is the arithmetic average of all values, while the median is the middle value when sorted."
    answer = "The median is the arithmetic average of all values, while the mean is the middle value when sorted."
    assert [f.kind for f in findings("Mean or median?", reference, answer)] == ["swapped roles"]


@pytest.mark.parametrize(
    ("reference", "answer", "named"),
    [
        (  # one-letter names are terms, not the article
            "Conditional probability P(A|B) is the probability that event A occurs given that event B has occurred, "
            "computed as P(A and B) / P(B).",
            "Conditional probability P(A|B) is the probability that event B occurs given that event A has occurred, "
            "computed as P(A and B) / P(A).",
            ("A", "B"),
        ),
        (  # the terms in other forms, with the wording around them changed
            "In RAG the vector database finds the documents most similar to a query's embedding and supplies them "
            "as context.",
            "In RAG the vector database finds the queries most similar to a document's embedding and supplies them "
            "as context.",
            ("query's", "documents"),
        ),
        (
            "groupby splits the DataFrame into groups by the values of one or more columns, applies a function to "
            "each group, and combines the results.",
            "groupby combines the DataFrame into groups by the values of one or more columns, applies a function to "
            "each group, and splits the results.",
            ("splits", "combines"),
        ),
    ],
)
def test_terms_in_each_others_place_in_the_references_wording_are_swapped_roles(
    reference: str, answer: str, named: tuple[str, str]
) -> None:
    [finding] = realigned_terms(reference, answer)
    assert finding.kind == "swapped roles" and all(f'"{term}"' in finding.message for term in named)


@pytest.mark.parametrize(
    ("reference", "answer"),
    [
        # terms named side by side are reordered, not exchanged
        (
            "Bulb A and bulb B are still in a closed path with the battery.",
            "Bulb B and bulb A are still in a closed path with the battery.",
        ),
        (
            "The solid is too big to go through the filter paper.",
            "The solid was too big to go through the paper filter.",
        ),
        # a paraphrase in other words shares too little of the reference's wording to be read this way
        (
            "In RAG the vector database finds the documents most similar to a query's embedding and supplies them "
            "as context.",
            "Given the question's embedding, the store returns the nearest passages, which go into the prompt.",
        ),
        (
            "Fit the scaler on the training data, then apply it to the test data.",
            "Fit the scaler on the training data only, then apply it to the test data.",
        ),
    ],
)
def test_terms_in_their_place_are_not_swapped(reference: str, answer: str) -> None:
    assert realigned_terms(reference, answer) == []


BATCH = (
    "An epoch is one full pass through the training data. A batch is the subset of examples processed together "
    "before one parameter update."
)


def test_a_negation_the_reference_lacks_about_its_point_is_a_denial() -> None:
    answer = (
        "An epoch is one pass through the data, and a batch is a subset of examples processed together, "
        "but the parameters are not updated after each batch."
    )
    [finding] = denials(answer, BATCH)
    assert finding.kind == "denial" and "not updated" in finding.message and finding.cap < 7


@pytest.mark.parametrize(
    ("reference", "answer"),
    [
        # a contrapositive, a condition, a quoted word, a hedge, the opposite word negated
        (
            "Controlled experiments change one variable at a time.",
            "If you do not change one variable at a time, it is not a controlled experiment.",
        ),
        (BATCH, "If the parameters were not updated, training would do nothing; they are updated after each batch."),
        (
            "Stop words are very common words that add little meaning and are removed before analysis.",
            "Stop words such as 'not' are very common words removed before analysis.",
        ),
        (
            "Broadcasting expands the smaller array to match and it copies no data.",
            "Broadcasting stretches the smaller array to match without copying data.",
        ),
        (
            "Regularization decreases the variance of the model.",
            "Regularization does not increase the variance of the model.",
        ),
        # a negation of something the reference does not talk about
        (
            "Regularization adds a penalty on large weights to the loss.",
            "Regularization adds a penalty on large weights to the loss, so you do not need a bigger dataset.",
        ),
    ],
)
def test_negations_that_deny_nothing_the_reference_states_are_not_denials(reference: str, answer: str) -> None:
    assert denials(answer, reference) == []
