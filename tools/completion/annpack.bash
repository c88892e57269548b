# bash completion for annpack and annpackfs (installed as
# share/bash-completion/completions/annpack and .../annpackfs).
# The words come from the programs' own --help, so they never drift from the CLI:
# commands from `annpack --help`, packset subcommands from `annpack packset --help`,
# options from `annpack COMMAND [SUBCOMMAND] --help`.

_annpack_help_words() {
    # Prints the --long options a help text names.
    "$@" --help 2>/dev/null | grep -oE -- '(^|[ [(|])--[a-z0-9][a-z0-9-]*' | sed 's/^[ [(|]//' | sort -u
}

_annpack() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
    fi
    local prog=${words[0]}
    if [ "$cword" -eq 1 ]; then
        local cmds
        cmds=$("$prog" --help 2>/dev/null | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1}')
        COMPREPLY=($(compgen -W "$cmds --help --version" -- "$cur"))
        return
    fi
    local cmd=${words[1]} sub=()
    if [ "$cmd" = packset ]; then
        if [ "$cword" -eq 2 ]; then
            local subs
            subs=$("$prog" packset --help 2>/dev/null | awk '/^  [a-z]/{print $1}')
            COMPREPLY=($(compgen -W "$subs --help" -- "$cur"))
            return
        fi
        sub=("${words[2]}")
    fi
    if [ "$prev" = --template ]; then
        COMPREPLY=($(compgen -W "$("$prog" templates 2>/dev/null | awk '{print $1}')" -- "$cur"))
        return
    fi
    case $cur in
        -*) COMPREPLY=($(compgen -W "$(_annpack_help_words "$prog" "$cmd" "${sub[@]}") --help" -- "$cur")) ;;
        *) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null ;;
    esac
}
complete -F _annpack annpack

_annpackfs() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    if [ "$prev" = -o ]; then
        local opts
        opts=$(annpackfs --help 2>/dev/null | grep -oE -- '-o [a-z_]+=?' | sed 's/^-o //')
        COMPREPLY=($(compgen -W "$opts allow_other" -- "$cur"))
        compopt -o nospace 2>/dev/null
        return
    fi
    case $cur in
        -*) COMPREPLY=($(compgen -W "-o -f -d --help --version" -- "$cur")) ;;
        *) COMPREPLY=($(compgen -d -- "$cur")); compopt -o filenames 2>/dev/null ;;
    esac
}
complete -F _annpackfs annpackfs
