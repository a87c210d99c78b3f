Feature: Replay buffer service compatible with the original API
  Environments POST transitions to /record_data/ and the learner samples
  /batch_data/{size}; the service answers with proper status codes.

  Background:
    Given an empty replay buffer service

  Scenario: A valid record is accepted
    When a client records 4 valid transitions
    Then the answer is 201
    And the buffer holds 4 rows

  Scenario: An invalid record is refused
    When a client records transitions whose "State" rows are ragged
    Then the answer is 422
    And the message names "State"
    And the buffer holds 0 rows

  Scenario: A record without a required key is refused
    When a client records transitions without "Next State"
    Then the answer is 422
    And the message names "Next State"

  Scenario: A batch larger than the stored rows is refused
    Given the buffer holds 5 recorded transitions
    When a client asks for a batch of 6
    Then the answer is 409

  Scenario Outline: A batch of M <= N rows returns M rows
    Given the buffer holds <N> recorded transitions
    When a client asks for a batch of <M>
    Then the answer is 200
    And the batch has <M> distinct rows of numbers under every key

    Examples:
      | N  | M  |
      | 5  | 1  |
      | 5  | 5  |
      | 20 | 7  |

  Scenario: Writes need the bearer token when the service has one
    Given the service requires the token "s3cret"
    When a client records 2 valid transitions without a token
    Then the answer is 401
    When a client records 2 valid transitions with the token "wrong"
    Then the answer is 403
    When a client records 2 valid transitions with the token "s3cret"
    Then the answer is 201

  Scenario: An oversized body is refused
    Given the service limits bodies to 1000 bytes
    When a client records 100 valid transitions
    Then the answer is 413
    And the buffer holds 0 rows

  Scenario: A restart keeps the recorded rows
    Given the buffer holds 6 recorded transitions
    When the service restarts on the same data directory
    Then the buffer holds 6 rows
    And a batch of 6 holds every recorded id
