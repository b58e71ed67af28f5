"""What people's words on faces add up to (facetag.identity.words): the latest word wins, an undo takes back
one action, clusters said to be one person merge."""

from facetag.identity.words import FaceWords, merged_clusters, resolve_words


def word(verdict, name="", action=None, same_as=None):
    return {"name": name, "verdict": verdict, "action": action, "same_as": same_as}


def test_the_latest_word_wins_and_an_undo_takes_back_its_action_only():
    assert resolve_words([]) == FaceWords()
    # Rows of a store from before actions existed (no action, no same_as) read as before.
    assert resolve_words([{"name": "Ada", "verdict": "is"}, {"name": "Ada", "verdict": "not"}]) == FaceWords(
        None, frozenset({"Ada"}))
    said = [word("is", "Ada", "a1"), word("hide", action="a2"), word("not", "Ada", "a3"), word("is", "Bea", "a4"),
            word("undo", action="a4"), word("undo", action="a2")]
    assert resolve_words(said) == FaceWords(None, frozenset({"Ada"}), hidden=False)
    assert resolve_words(said[:4]) == FaceWords("Bea", frozenset({"Ada"}), hidden=True)
    assert resolve_words([word("hide", action="a"), word("show", action="b")]).hidden is False
    assert resolve_words([word("same", action="m", same_as="f9"), word("undo", action="m")]).same_as is None


def test_clusters_said_to_be_one_person_merge_into_the_smallest_id():
    cluster_of = {"a": 4, "b": 2, "c": 7, "d": None, "e": 2, "x": 9}
    sizes = {4: 5, 2: 3, 7: 4, 9: 6}
    cluster_map, face_map, new_sizes = merged_clusters(cluster_of, {"a": "b", "c": "a", "d": "e"}, sizes)
    assert cluster_map == {4: 2, 7: 2}  # 4 with 2, then 7 with 4's group: all become 2
    assert face_map == {"d": 2}  # a face in no cluster joins the cluster of the face it is said to be
    assert new_sizes == {2: 5 + 3 + 4 + 1}
    assert merged_clusters(cluster_of, {}, sizes) == ({}, {}, {})
    assert merged_clusters(cluster_of, {"d": "zz"}, sizes) == ({}, {}, {})  # neither in a cluster: nothing
